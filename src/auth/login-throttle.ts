/**
 * Slows down password guessing: each failed local login for an account is answered only after a
 * delay that doubles with the recent failures for that account from that address (and, more
 * gently, from all addresses), so a guesser gets a handful of tries a minute instead of
 * thousands. Correct logins are never delayed, nor are other accounts: only the refusal waits.
 */
export interface LoginThrottleOptions {
  /** Delay after the first failure. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Failures older than this are forgotten. */
  readonly windowMs: number;
}

export const DEFAULT_THROTTLE: LoginThrottleOptions = {
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  windowMs: 15 * 60_000,
};

interface Failures {
  count: number;
  last: number;
}

/** Bounds memory against guessers cycling through made-up account names. */
const MAX_TRACKED = 10_000;

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly options: LoginThrottleOptions = DEFAULT_THROTTLE,
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, ms).unref()),
  ) {}

  /** Records a failed login and resolves when the refusal may be sent. */
  async failed(account: string, source: string | undefined): Promise<void> {
    const now = Date.now();
    const fromSource = this.bump(`${account.toLowerCase()}\0${source ?? ''}`, now);
    // From everywhere: a distributed guesser is slowed too, four times more gently.
    const fromAnywhere = this.bump(account.toLowerCase(), now);
    const steps = Math.max(fromSource, Math.ceil(fromAnywhere / 4));
    await this.sleep(this.delayFor(steps));
  }

  /** A correct password from this address clears its record for the account. */
  succeeded(account: string, source: string | undefined): void {
    this.failures.delete(`${account.toLowerCase()}\0${source ?? ''}`);
  }

  /** The delay after `failures` recent failures. */
  delayFor(failures: number): number {
    if (failures <= 0) return 0;
    return Math.min(this.options.baseDelayMs * 2 ** (failures - 1), this.options.maxDelayMs);
  }

  private bump(key: string, now: number): number {
    const entry = this.failures.get(key);
    const fresh =
      entry && now - entry.last < this.options.windowMs ? entry : { count: 0, last: now };
    fresh.count += 1;
    fresh.last = now;
    this.failures.delete(key);
    this.failures.set(key, fresh);
    if (this.failures.size > MAX_TRACKED) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    return fresh.count;
  }
}

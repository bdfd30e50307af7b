import { timingSafeEqual } from 'node:crypto';
import type { Passphrase } from '../tokens/vault/passphrase.js';
import { LoginFailure } from './types.js';

/**
 * Slows down password guessing: each failed local login for an account is answered only after a
 * delay that doubles with the recent failures for that account from that address (and, more
 * gently, from all addresses). Once an account has recent failures, its attempts with a password
 * not yet proven are also taken one at a time, each after that delay, and a few at most wait:
 * more are told to try later without their password being tried. So a guesser gets a handful of
 * tries a minute, on any number of connections, and a right guess is no faster than a wrong one.
 * The owner's password, once it has logged in, is recognised (by an HMAC under a per-process key,
 * never stored) and skips all of it; so do other accounts.
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

/** Attempts with an unproven password that may wait for their turn on an account under attack. */
export const MAX_WAITING_ATTEMPTS = 4;
/** Unproven attempts at once on an account with no recent failures (a burst of folders opening). */
export const MAX_UNPROVEN_IN_FLIGHT = 16;

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();
  /** Per account: the HMAC of the password that last logged in. */
  private readonly proven = new Map<string, Buffer>();
  /** Per account: unproven attempts admitted and not yet finished, and the tail of their queue. */
  private readonly queues = new Map<
    string,
    { inFlight: number; passwords: Map<string, number>; tail: Promise<void> }
  >();

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

  /**
   * A correct password from this address clears its record for the account, and is remembered
   * as proven (as an HMAC) so that it skips {@link admit} from now on.
   */
  succeeded(account: string, source: string | undefined, password?: Passphrase): void {
    this.failures.delete(`${account.toLowerCase()}\0${source ?? ''}`);
    if (password !== undefined) this.proven.set(account.toLowerCase(), password.digest());
  }

  /** True when `password` is the one that last logged in to `account`. */
  isProven(account: string, password: Passphrase): boolean {
    const known = this.proven.get(account.toLowerCase());
    return known !== undefined && timingSafeEqual(known, password.digest());
  }

  /**
   * Waits for an unproven attempt's turn on `account` and resolves with the function that ends
   * it. On an account with recent failures, attempts go one at a time, each after the delay those
   * failures earned; without any, up to {@link MAX_UNPROVEN_IN_FLIGHT} different passwords go at
   * once (a mail client opening many connections with one password counts once). Past either
   * bound the attempt is refused as temporary, its password untried.
   */
  async admit(account: string, password: Passphrase): Promise<() => void> {
    const key = account.toLowerCase();
    const queue = this.queues.get(key) ?? {
      inFlight: 0,
      passwords: new Map<string, number>(),
      tail: Promise.resolve(),
    };
    const failures = this.recentFailures(key);
    const digest = password.tag();
    const samePasswordInFlight = queue.passwords.has(digest);
    const busy =
      failures > 0
        ? queue.inFlight >= MAX_WAITING_ATTEMPTS + 1
        : !samePasswordInFlight && queue.passwords.size >= MAX_UNPROVEN_IN_FLIGHT;
    if (busy)
      throw new LoginFailure(
        'temporary',
        'Too many login attempts for this account at once, try again later',
      );
    queue.inFlight += 1;
    queue.passwords.set(digest, (queue.passwords.get(digest) ?? 0) + 1);
    this.queues.set(key, queue);
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const end = (): void => {
      finish();
      queue.inFlight -= 1;
      const left = (queue.passwords.get(digest) ?? 1) - 1;
      if (left > 0) queue.passwords.set(digest, left);
      else queue.passwords.delete(digest);
      if (queue.inFlight === 0) this.queues.delete(key);
    };
    if (failures === 0) return end;
    const turn = queue.tail;
    queue.tail = turn.then(() => done);
    await turn;
    await this.sleep(this.delayFor(this.recentFailures(key)));
    return end;
  }

  private recentFailures(key: string): number {
    const entry = this.failures.get(key);
    return entry && Date.now() - entry.last < this.options.windowMs ? entry.count : 0;
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

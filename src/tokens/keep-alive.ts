/**
 * Background refreshes: once a login has made an account's key known, its access token is
 * refreshed before it expires and at least every `maxIntervalMs`, so the first login of the
 * morning finds a fresh token and a refresh token that has not aged out (Microsoft's lapse after
 * 90 days unused). Temporary failures back off; anything else stops until the next login.
 */
import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import type { TokenSubject } from './subject.js';
import type { TokenManager } from './token-manager.js';

export interface KeepAliveOptions {
  /** Refresh this long before the access token expires. */
  readonly marginSeconds: number;
  /** Refresh at least this often, so an idle account's refresh token never lapses (Microsoft: 90 days). */
  readonly maxIntervalMs: number;
  /** First retry after a temporary failure; doubles up to an hour. */
  readonly retryMs: number;
}

interface Tracked {
  readonly subject: TokenSubject;
  timer?: NodeJS.Timeout;
  lastRefresh: number;
  failures: number;
}

const MAX_RETRY_MS = 60 * 60 * 1000;

export class KeepAlive {
  private readonly tracked = new Map<string, Tracked>();
  private readonly onKnown = (subject: TokenSubject): void => this.track(subject);

  constructor(
    private readonly tokens: TokenManager,
    private readonly log: Logger,
    private readonly options: KeepAliveOptions,
  ) {
    tokens.on('known', this.onKnown);
  }

  close(): void {
    this.tokens.off('known', this.onKnown);
    for (const entry of this.tracked.values()) clearTimeout(entry.timer);
    this.tracked.clear();
  }

  /** Starts refreshing an account whose key the token manager now holds (once per account). */
  private track(subject: TokenSubject): void {
    if (this.tracked.has(subject.key)) return;
    const entry: Tracked = { subject, lastRefresh: Date.now(), failures: 0 };
    this.tracked.set(subject.key, entry);
    void this.run(entry, false);
  }

  private schedule(entry: Tracked, expiry: number | undefined): void {
    const untilDue =
      expiry === undefined ? Infinity : (expiry - this.options.marginSeconds) * 1000 - Date.now();
    const untilInterval = entry.lastRefresh + this.options.maxIntervalMs - Date.now();
    const delay = Math.max(1_000, Math.min(untilDue, untilInterval));
    entry.timer = setTimeout(() => void this.run(entry, untilInterval <= untilDue), delay).unref();
  }

  private async run(entry: Tracked, force: boolean): Promise<void> {
    const account = entry.subject.key;
    if (this.tracked.get(account) !== entry) return;
    try {
      const outcome = await this.tokens.refreshIfDue(
        entry.subject,
        force,
        this.options.maxIntervalMs,
      );
      switch (outcome.outcome) {
        case 'no-refresh-token':
          return this.forget(entry, 'no refresh token');
        case 'no-key':
          return this.forget(entry, 'the tokens were re-encrypted with another password');
        case 'refreshed':
          entry.lastRefresh = Date.now();
          break;
        case 'not-due':
          // Someone else (another instance, a login) refreshed: the interval counts from then.
          if (outcome.lastActivityMs !== undefined)
            entry.lastRefresh = Math.max(entry.lastRefresh, outcome.lastActivityMs);
      }
      entry.failures = 0;
      this.schedule(entry, outcome.expiry);
    } catch (err) {
      if (err instanceof LoginFailure && err.reason === 'temporary') {
        const retry = Math.min(this.options.retryMs * 2 ** entry.failures, MAX_RETRY_MS);
        entry.failures += 1;
        this.log.info(
          { event: 'keepalive_retry', account, retryInMs: retry },
          'background refresh failed; will retry',
        );
        entry.timer = setTimeout(() => void this.run(entry, force), retry).unref();
        return;
      }
      this.forget(entry, err instanceof Error ? err.message : String(err));
    }
  }

  private forget(entry: Tracked, why: string): void {
    if (this.tracked.get(entry.subject.key) === entry) this.tracked.delete(entry.subject.key);
    this.log.info(
      { event: 'keepalive_stopped', account: entry.subject.key },
      `background refresh stopped: ${why}`,
    );
  }
}

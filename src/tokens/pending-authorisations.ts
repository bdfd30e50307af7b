import { EventEmitter } from 'node:events';
import { LoginFailure } from '../auth/types.js';
import {
  completeAuthorization,
  startAuthorization,
  type PendingAuthorization,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import type { TokenSubject } from './subject.js';

/** What may be shown about a pending authorisation (never the PKCE verifier). */
export interface PendingView {
  readonly key: string;
  readonly loginName: string;
  readonly url: string;
  /** Unix milliseconds. */
  readonly since: number;
  /** Logins currently waiting for it. */
  readonly waiting: number;
}

interface Waiter {
  readonly password: string;
  resolve(tokens: { tokens: TokenSet; password: string }): void;
  reject(err: Error): void;
}

interface Entry {
  readonly subject: TokenSubject;
  readonly authorization: PendingAuthorization;
  readonly since: number;
  readonly waiters: Set<Waiter>;
}

export interface AuthorisationEvents {
  /** A new authorisation is waiting for the user (not emitted when one is joined). */
  pending: [PendingView];
}

/** The outcome of a completed authorisation, for whoever stores the tokens. */
export interface CompletedAuthorisation {
  readonly subject: TokenSubject;
  readonly tokens: TokenSet;
  /**
   * The waiting logins' password, to encrypt the tokens with; absent when nobody was waiting
   * (the next login supplies it).
   */
  readonly password?: string;
}

/**
 * Authorisations waiting for the user, at most one per account: every login for that account
 * joins it, and a single paste completes them all.
 */
export class PendingAuthorisations extends EventEmitter<AuthorisationEvents> {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly oauthOptions: ProviderClientOptions,
    private readonly onCompleted: (completed: CompletedAuthorisation) => Promise<void>,
  ) {
    super();
  }

  /** Starts an authorisation for the subject, or returns the one already pending. */
  async begin(subject: TokenSubject): Promise<PendingView> {
    const existing = this.entries.get(subject.key);
    if (existing) return view(existing);
    const authorization = await startAuthorization(subject.account, { ...this.oauthOptions, loginHint: subject.loginName });
    // Another login may have started one while we built the link; keep the first.
    const raced = this.entries.get(subject.key);
    if (raced) return view(raced);
    const entry: Entry = { subject, authorization, since: Date.now(), waiters: new Set() };
    this.entries.set(subject.key, entry);
    this.emit('pending', view(entry));
    return view(entry);
  }

  /**
   * Waits up to `timeoutMs` for the subject's pending authorisation to complete, then fails
   * with `failure` (a temporary login failure that tells the user what to do).
   */
  wait(key: string, password: string, timeoutMs: number, failure: () => LoginFailure): Promise<{ tokens: TokenSet; password: string }> {
    const entry = this.entries.get(key);
    if (!entry || timeoutMs <= 0) return Promise.reject(failure());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        password,
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        entry.waiters.delete(waiter);
        reject(failure());
      }, timeoutMs);
      entry.waiters.add(waiter);
    });
  }

  get(key: string): PendingView | undefined {
    const entry = this.entries.get(key);
    return entry && view(entry);
  }

  list(): PendingView[] {
    return [...this.entries.values()].map(view);
  }

  /**
   * Redeems a pasted redirect address. On success the tokens are handed to `onCompleted` and
   * every waiting login resumes. A bad paste (`OAuthError` of kind `paste`) leaves the
   * authorisation pending so the user can paste again.
   *
   * @throws OAuthError, or Error when nothing is pending for the key.
   */
  async complete(key: string, pastedText: string): Promise<CompletedAuthorisation> {
    const entry = this.entries.get(key);
    if (!entry) throw new Error(`No authorisation is pending for ${key}`);
    const tokens = await completeAuthorization(entry.subject.account, entry.authorization, pastedText, this.oauthOptions);
    if (this.entries.get(key) !== entry) throw new Error(`The authorisation for ${key} was completed or replaced meanwhile`);
    this.entries.delete(key);

    const [first] = entry.waiters;
    const completed: CompletedAuthorisation = { subject: entry.subject, tokens, ...(first && { password: first.password }) };
    try {
      await this.onCompleted(completed);
    } catch (err) {
      for (const waiter of entry.waiters) waiter.reject(err as Error);
      throw err;
    }
    for (const waiter of entry.waiters) {
      if (waiter.password === first?.password) waiter.resolve({ tokens, password: waiter.password });
      else waiter.reject(new LoginFailure('bad-password', `Wrong password for ${entry.subject.loginName}: the account was just authorised by a login with another password`));
    }
    return completed;
  }
}

function view(entry: Entry): PendingView {
  return {
    key: entry.subject.key,
    loginName: entry.subject.loginName,
    url: entry.authorization.url,
    since: entry.since,
    waiting: entry.waiters.size,
  };
}

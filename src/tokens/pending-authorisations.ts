import { EventEmitter } from 'node:events';
import { LoginFailure } from '../auth/types.js';
import {
  classifyOAuthFailure,
  completeAuthorization,
  noSignInFor,
  pollDeviceAuthorization,
  startAuthorization,
  startDeviceAuthorization,
  type OAuthError,
  type PendingAuthorization,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import type { TokenSubject } from './subject.js';

/** What may be shown about a pending authorisation (never the PKCE verifier or device code). */
export interface PendingView {
  readonly key: string;
  readonly loginName: string;
  readonly flow: 'authorization_code' | 'device';
  /** The sign-in link (code flow) or the page where the user enters `userCode` (device flow). */
  readonly url: string;
  readonly userCode?: string;
  /** Unix seconds after which a device code is void. */
  readonly expiresAt?: number;
  /** Unix milliseconds. */
  readonly since: number;
  /** Logins currently waiting for it. */
  readonly waiting: number;
}

interface Waiter {
  readonly password: string;
  resolve(tokens: TokenSet): void;
  reject(err: Error): void;
}

type Entry = {
  readonly subject: TokenSubject;
  readonly since: number;
  readonly waiters: Set<Waiter>;
} & (
  | { readonly flow: 'authorization_code'; readonly authorization: PendingAuthorization }
  | {
      readonly flow: 'device';
      readonly verificationUri: string;
      readonly userCode: string;
      readonly expiresAt: number;
      readonly stop: AbortController;
    }
);

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

export interface AuthorisationEvents {
  /** A new authorisation is waiting for the user (not emitted when one is joined). */
  pending: [PendingView];
  completed: [CompletedAuthorisation];
  /** A device authorisation expired or was declined; nothing is pending any more. */
  failed: [{ key: string; error: OAuthError }];
}

/**
 * Authorisations waiting for the user, at most one per account: every login for that account
 * joins it, and a single paste (or device approval) completes them all.
 */
export class PendingAuthorisations extends EventEmitter<AuthorisationEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly starting = new Map<string, Promise<PendingView>>();

  /**
   * @param oauthOptions - the provider-client options for one account's requests, asked at each
   *   request because an account's client secret may only become known (decrypted) at a later login
   */
  constructor(
    private readonly oauthOptions: (subject: TokenSubject) => Promise<ProviderClientOptions>,
    private readonly onCompleted: (completed: CompletedAuthorisation) => Promise<void>,
  ) {
    super();
  }

  /**
   * Starts an authorisation for the subject, or returns the one already pending.
   *
   * @throws OAuthError (`config`) for a flow in which nobody signs in (client_credentials, password, service_account).
   */
  begin(subject: TokenSubject): Promise<PendingView> {
    const noSignIn = noSignInFor(subject.account, subject.key);
    if (noSignIn) return Promise.reject(noSignIn);
    const existing = this.entries.get(subject.key);
    if (existing) return Promise.resolve(view(existing));
    let starting = this.starting.get(subject.key);
    if (!starting) {
      starting = this.start(subject).finally(() => this.starting.delete(subject.key));
      this.starting.set(subject.key, starting);
    }
    return starting;
  }

  private async start(subject: TokenSubject): Promise<PendingView> {
    const base = { subject, since: Date.now(), waiters: new Set<Waiter>() };
    // Asked before anything starts: an account whose secret cannot be sent fails now, not after the sign-in.
    const oauthOptions = await this.oauthOptions(subject);
    let entry: Entry;
    if (subject.account.flow === 'device') {
      const device = await startDeviceAuthorization(subject.account, oauthOptions);
      entry = {
        ...base,
        flow: 'device',
        verificationUri: device.verificationUriComplete ?? device.verificationUri,
        userCode: device.userCode,
        expiresAt: device.expiresAt,
        stop: new AbortController(),
      };
      void this.pollDevice(entry, device.handle);
    } else {
      const authorization = await startAuthorization(subject.account, {
        ...oauthOptions,
        loginHint: subject.loginName,
      });
      entry = { ...base, flow: 'authorization_code', authorization };
    }
    this.entries.set(subject.key, entry);
    this.emit('pending', view(entry));
    return view(entry);
  }

  /**
   * Waits up to `timeoutMs` for the subject's pending authorisation to complete, then fails
   * with `failure` (a temporary login failure that tells the user what to do).
   */
  wait(
    key: string,
    password: string,
    timeoutMs: number,
    failure: () => LoginFailure,
  ): Promise<TokenSet> {
    const entry = this.entries.get(key);
    if (!entry || timeoutMs <= 0) return Promise.reject(failure());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        password,
        resolve: (tokens) => {
          clearTimeout(timer);
          resolve(tokens);
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

  /** The account behind a pending authorisation. */
  subject(key: string): TokenSubject | undefined {
    return this.entries.get(key)?.subject;
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
   * @throws OAuthError, or Error when no code-flow authorisation is pending for the key.
   */
  async complete(key: string, pastedText: string): Promise<CompletedAuthorisation> {
    const entry = this.entries.get(key);
    if (!entry) throw new Error(`No authorisation is pending for ${key}`);
    if (entry.flow !== 'authorization_code')
      throw new Error(
        `${key} uses the device flow: enter the code ${entry.userCode} at ${entry.verificationUri}`,
      );
    const tokens = await completeAuthorization(
      entry.subject.account,
      entry.authorization,
      pastedText,
      await this.oauthOptions(entry.subject),
    );
    if (this.entries.get(key) !== entry)
      throw new Error(`The authorisation for ${key} was completed or replaced meanwhile`);
    return this.finish(entry, tokens);
  }

  /** Ends every pending authorisation (shutdown); waiting logins are told to try again later. */
  close(): void {
    for (const entry of this.entries.values()) {
      if (entry.flow === 'device') entry.stop.abort();
      for (const waiter of entry.waiters) {
        waiter.reject(
          new LoginFailure(
            'temporary',
            'The proxy is stopping; the authorisation was not completed. Try again later',
          ),
        );
      }
    }
    this.entries.clear();
  }

  private async pollDevice(
    entry: Entry & { flow: 'device' },
    handle: Parameters<typeof pollDeviceAuthorization>[0],
  ): Promise<void> {
    let tokens: TokenSet;
    try {
      tokens = await pollDeviceAuthorization(handle, entry.stop.signal);
    } catch (err) {
      if (entry.stop.signal.aborted) return;
      const error = classifyOAuthFailure(err, 'device');
      if (this.entries.get(entry.subject.key) === entry) this.entries.delete(entry.subject.key);
      for (const waiter of entry.waiters)
        waiter.reject(
          new LoginFailure(
            'authorisation-needed',
            `${entry.subject.loginName}: the device authorisation failed: ${error.message}. ${error.hint}`,
          ),
        );
      this.emit('failed', { key: entry.subject.key, error });
      return;
    }
    if (this.entries.get(entry.subject.key) !== entry) return;
    await this.finish(entry, tokens).catch(() => undefined);
  }

  private async finish(entry: Entry, tokens: TokenSet): Promise<CompletedAuthorisation> {
    this.entries.delete(entry.subject.key);
    const [first] = entry.waiters;
    const completed: CompletedAuthorisation = {
      subject: entry.subject,
      tokens,
      ...(first && { password: first.password }),
    };
    try {
      await this.onCompleted(completed);
    } catch (err) {
      for (const waiter of entry.waiters) waiter.reject(err as Error);
      throw err;
    }
    for (const waiter of entry.waiters) {
      if (waiter.password === first?.password) waiter.resolve(tokens);
      else
        waiter.reject(
          new LoginFailure(
            'bad-password',
            `Wrong password for ${entry.subject.loginName}: the account was just authorised by a login with another password`,
          ),
        );
    }
    this.emit('completed', completed);
    return completed;
  }
}

function view(entry: Entry): PendingView {
  const common = {
    key: entry.subject.key,
    loginName: entry.subject.loginName,
    since: entry.since,
    waiting: entry.waiters.size,
  };
  return entry.flow === 'device'
    ? {
        ...common,
        flow: 'device',
        url: entry.verificationUri,
        userCode: entry.userCode,
        expiresAt: entry.expiresAt,
      }
    : { ...common, flow: 'authorization_code', url: entry.authorization.url };
}

/**
 * Sign-ins waiting for the user (the authorization-code flow's pasted or redirected address, the
 * device flow's code): at most one per account, joined by every login and every `authorize` for
 * it, so a single paste (or device approval) completes them all; bounded in number and lifetime. A completed sign-in hands its tokens to the token manager,
 * which saves them; then the waiting logins are answered: those with the password the tokens are
 * saved under get them, the others are told why not.
 */
import { EventEmitter } from 'node:events';
import { loginFailureFromOAuth } from '../auth/oauth-login-failure.js';
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
import { SingleFlight } from './single-flight.js';
import type { TokenSubject } from './subject.js';
import type { Passphrase } from './vault/passphrase.js';

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
  readonly password: Passphrase;
  /**
   * Whether this login may set the password of tokens someone else authorised: false when its
   * password was refused by tokens the account had (it may be anyone's), true when there was
   * nothing to refuse it or it opened them.
   */
  readonly vouched: boolean;
  /** The set it waits in (an authorisation's, or the owner's-password one), left when it settles. */
  home: Set<Waiter>;
  resolve(accessToken: string): void;
  reject(err: Error): void;
}

/** Limits that keep made-up addresses from costing more than a refusal. */
export interface PendingLimits {
  /** How long an authorisation stays pending. */
  readonly lifetimeMs: number;
  /** Most authorisations pending for one config section (a catch-all section has one per address). */
  readonly perSection: number;
  /** Most authorisations pending in all. */
  readonly total: number;
}

export const DEFAULT_PENDING_LIMITS: PendingLimits = {
  lifetimeMs: 60 * 60 * 1000,
  perSection: 20,
  total: 100,
};

/** No new authorisation may start: too many are pending (see {@link PendingLimits}). */
export class TooManyPendingError extends Error {
  override readonly name = 'TooManyPendingError';
}

type Entry = {
  readonly subject: TokenSubject;
  readonly since: number;
  readonly waiters: Set<Waiter>;
  readonly expiry: NodeJS.Timeout;
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
export interface CompletedAuthorization {
  readonly subject: TokenSubject;
  readonly tokens: TokenSet;
  /**
   * The waiting logins' password, to encrypt the tokens with; absent when nobody was waiting
   * (the next login supplies it).
   */
  readonly password?: Passphrase;
}

export interface AuthorizationEvents {
  /** A new authorisation is waiting for the user (not emitted when one is joined). */
  pending: [PendingView];
  completed: [CompletedAuthorization];
  /** A device authorisation expired or was declined; nothing is pending any more. */
  failed: [{ key: string; error: OAuthError }];
  /** The authorisation ended without tokens (expired, failed, settled elsewhere, shutdown). */
  ended: [{ key: string }];
}

export class PendingAuthorizations extends EventEmitter<AuthorizationEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly starting = new SingleFlight<PendingView>();
  /**
   * Per account, logins whose password nothing proved, waiting for the owner to give the password
   * of tokens authorised meanwhile (see {@link PendingAuthorizations.passwordGiven}).
   */
  private readonly parked = new Map<string, Set<Waiter>>();
  /** Authorisations being started, per config section (counted against its limit). */
  private readonly startingIn = new Map<string, number>();

  /**
   * @param oauthOptions - the provider-client options for one account's requests, asked at each
   *   request because an account's client secret may only become known (decrypted) at a later login
   */
  constructor(
    private readonly oauthOptions: (subject: TokenSubject) => Promise<ProviderClientOptions>,
    private readonly onCompleted: (completed: CompletedAuthorization) => Promise<void>,
    private readonly limits: PendingLimits = DEFAULT_PENDING_LIMITS,
  ) {
    super();
  }

  /**
   * Starts an authorisation for the subject, or returns the one already pending.
   *
   * @throws OAuthError (`config`) for a flow in which nobody signs in (client_credentials, password, service_account).
   * @throws {@link TooManyPendingError} when the section or the proxy has as many pending as allowed:
   *   checked before anything is asked of the provider, so a made-up address costs only the refusal.
   */
  begin(subject: TokenSubject): Promise<PendingView> {
    const noSignIn = noSignInFor(subject.account, subject.key);
    if (noSignIn) return Promise.reject(noSignIn);
    const existing = this.entries.get(subject.key);
    if (existing) return Promise.resolve(view(existing));
    const full = this.full(subject);
    if (full) return Promise.reject(new TooManyPendingError(full));
    return this.starting.run(subject.key, () => this.start(subject));
  }

  /** Why no authorisation may start for the subject now, or undefined when one may. */
  private full(subject: TokenSubject): string | undefined {
    // Authorisations being started count too: a burst of new addresses all arrives before any is pending.
    const keys = new Set([...this.entries.keys(), ...this.starting.keys()]);
    if (keys.size >= this.limits.total)
      return `${keys.size} authorisations are pending already, the most the proxy keeps`;
    let inSection = 0;
    for (const entry of this.entries.values())
      if (entry.subject.account.name === subject.account.name) inSection += 1;
    inSection += this.startingIn.get(subject.account.name) ?? 0;
    if (inSection >= this.limits.perSection)
      return `${inSection} authorisations are pending already for [${subject.account.name}], the most it may have`;
    return undefined;
  }

  private async start(subject: TokenSubject): Promise<PendingView> {
    const section = subject.account.name;
    this.startingIn.set(section, (this.startingIn.get(section) ?? 0) + 1);
    try {
      return await this.startNow(subject);
    } finally {
      const left = (this.startingIn.get(section) ?? 1) - 1;
      if (left === 0) this.startingIn.delete(section);
      else this.startingIn.set(section, left);
    }
  }

  private async startNow(subject: TokenSubject): Promise<PendingView> {
    const since = Date.now();
    // Asked before anything starts: an account whose secret cannot be sent fails now, not after the sign-in.
    const oauthOptions = await this.oauthOptions(subject);
    const base = {
      subject,
      since,
      waiters: new Set<Waiter>(),
      expiry: setTimeout(() => this.expire(subject.key, since), this.limits.lifetimeMs).unref(),
    };
    let entry: Entry;
    try {
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
    } catch (err) {
      clearTimeout(base.expiry);
      throw err;
    }
    this.entries.set(subject.key, entry);
    this.emit('pending', view(entry));
    return view(entry);
  }

  /** Ends an authorisation nobody completed within its lifetime; its logins are told to authorise. */
  private expire(key: string, since: number): void {
    const entry = this.entries.get(key);
    if (!entry || entry.since !== since) return;
    this.end(
      entry,
      new LoginFailure(
        'authorisation-needed',
        `${entry.subject.loginName}: the authorisation was not completed in time; log in again to start a new one`,
      ),
    );
  }

  /** Removes the entry, stops what it runs, and refuses its waiting logins with `failure`. */
  private end(entry: Entry, failure: LoginFailure): void {
    if (this.entries.get(entry.subject.key) === entry) this.entries.delete(entry.subject.key);
    clearTimeout(entry.expiry);
    if (entry.flow === 'device') entry.stop.abort();
    for (const waiter of entry.waiters) waiter.reject(failure);
    entry.waiters.clear();
    this.emit('ended', { key: entry.subject.key });
  }

  /**
   * Waits up to `timeoutMs` for the subject's pending authorisation to complete, then fails
   * with `failure` (a login failure mail clients retry, saying what the user must do).
   */
  wait(
    key: string,
    password: Passphrase,
    vouched: boolean,
    timeoutMs: number,
    failure: () => LoginFailure,
  ): Promise<string> {
    const entry = this.entries.get(key);
    if (!entry) return Promise.reject(failure());
    return this.join(entry.waiters, password, vouched, timeoutMs, failure);
  }

  /**
   * Waits, like {@link PendingAuthorizations.wait}, for the owner to give the password of tokens
   * authorised while no login with a proven password waited ({@link PendingAuthorizations.passwordGiven}).
   */
  awaitOwner(
    key: string,
    password: Passphrase,
    timeoutMs: number,
    failure: () => LoginFailure,
  ): Promise<string> {
    let parked = this.parked.get(key);
    if (!parked) this.parked.set(key, (parked = new Set()));
    return this.join(parked, password, false, timeoutMs, failure);
  }

  /** How many logins wait for the owner to give the account's password. */
  awaitingOwner(key: string): number {
    return this.parked.get(key)?.size ?? 0;
  }

  /**
   * The owner gave the password of the account's new tokens (`authorize` in a terminal): logins
   * waiting with that password get `accessToken`; the others are told to log in again.
   */
  passwordGiven(subject: TokenSubject, password: Passphrase, accessToken: string): void {
    const parked = this.parked.get(subject.key);
    this.parked.delete(subject.key);
    for (const waiter of [...(parked ?? [])]) {
      if (waiter.password.sameAs(password)) waiter.resolve(accessToken);
      else waiter.reject(logInAgain(subject));
    }
  }

  private park(key: string, waiter: Waiter): void {
    let parked = this.parked.get(key);
    if (!parked) this.parked.set(key, (parked = new Set()));
    waiter.home = parked;
    parked.add(waiter);
  }

  private join(
    waiters: Set<Waiter>,
    password: Passphrase,
    vouched: boolean,
    timeoutMs: number,
    failure: () => LoginFailure,
  ): Promise<string> {
    if (timeoutMs <= 0) return Promise.reject(failure());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        password,
        vouched,
        home: waiters,
        resolve: (accessToken) => {
          clearTimeout(timer);
          waiter.home.delete(waiter);
          resolve(accessToken);
        },
        reject: (err) => {
          clearTimeout(timer);
          waiter.home.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(() => waiter.reject(failure()), timeoutMs);
      waiters.add(waiter);
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
  async complete(key: string, pastedText: string): Promise<CompletedAuthorization> {
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
    for (const [key, parked] of this.parked) {
      for (const waiter of [...parked])
        waiter.reject(
          new LoginFailure(
            'temporary',
            `The proxy is stopping; ${key} was not stored. Try again later`,
          ),
        );
    }
    this.parked.clear();
    for (const entry of [...this.entries.values()]) {
      this.end(
        entry,
        new LoginFailure(
          'temporary',
          'The proxy is stopping; the authorisation was not completed. Try again later',
        ),
      );
    }
  }

  /**
   * Another process or instance stored tokens for the account: its authorisation here is moot. Each
   * waiting login gets what `claim` makes of its password (an access token when the password opens
   * the new tokens); the others are told to log in again, never given the tokens.
   */
  settledElsewhere(
    key: string,
    claim: (password: Passphrase) => Promise<string | undefined>,
  ): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    const waiters = [...entry.waiters];
    entry.waiters.clear();
    this.end(entry, logInAgain(entry.subject));
    for (const waiter of waiters) {
      claim(waiter.password).then(
        (accessToken) =>
          accessToken === undefined
            ? waiter.reject(logInAgain(entry.subject))
            : waiter.resolve(accessToken),
        (err: unknown) => waiter.reject(err as Error),
      );
    }
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
      this.end(
        entry,
        loginFailureFromOAuth(error, {
          doing: `${entry.subject.loginName}: the device authorisation failed`,
          otherwise: 'authorisation-needed',
        }),
      );
      this.emit('failed', { key: entry.subject.key, error });
      return;
    }
    if (this.entries.get(entry.subject.key) !== entry) return;
    await this.finish(entry, tokens).catch(() => undefined);
  }

  private async finish(entry: Entry, tokens: TokenSet): Promise<CompletedAuthorization> {
    this.entries.delete(entry.subject.key);
    clearTimeout(entry.expiry);
    // Only a login whose password nothing refused may set the password of the new tokens.
    const first = [...entry.waiters].find((waiter) => waiter.vouched);
    const completed: CompletedAuthorization = {
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
    for (const waiter of [...entry.waiters]) {
      if (!waiter.vouched) {
        // Nobody proved a password: these wait for the owner's, typed into `authorize`.
        if (first) waiter.reject(logInAgain(entry.subject));
        else this.park(entry.subject.key, waiter);
      } else if (first && waiter.password.sameAs(first.password))
        waiter.resolve(tokens.accessToken);
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

/**
 * What a waiting login is told when the account was authorised but its password cannot be
 * trusted with the new tokens: the next login is judged against what is stored by then.
 */
function logInAgain(subject: TokenSubject): LoginFailure {
  return new LoginFailure(
    'temporary',
    `${subject.loginName} was authorised while this login waited, but its password was not the one that protects the tokens; log in again`,
  );
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

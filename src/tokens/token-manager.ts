import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import {
  classifyOAuthFailure,
  refresh,
  type OAuthError,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import { ClientSecrets, EncryptedClientSecretError } from './client-secret.js';
import { CorruptTokenError, WrongKeyError } from './fernet.js';
import { DEFAULT_ITERATIONS } from './key-derivation.js';
import {
  PendingAuthorizations,
  TooManyPendingError,
  type CompletedAuthorization,
  type PendingLimits,
  type PendingView,
} from './pending-authorizations.js';
import { SingleFlight } from './single-flight.js';
import { TokenStoreUnavailableError } from './stores/store-errors.js';
import type { AccountChange, TokenStore } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';
import type { AccountKey, AccountKeys, DecryptedTokens } from './token-cipher.js';
import { UnattendedGrants } from './unattended-grants.js';
import { readFields } from './vault.js';

export interface TokenManagerOptions {
  readonly store: TokenStore;
  readonly keys: AccountKeys;
  readonly log: Logger;
  /** Options for every request to the provider; an account's decrypted client secret is added per request. */
  readonly oauth: ProviderClientOptions;
  /** Refresh when the access token expires within this many seconds. */
  readonly refreshMarginSeconds: number;
  /**
   * How long a login waits for a pending authorisation before it is answered "try again later".
   * Zero when nobody can complete one interactively.
   */
  readonly loginWaitMs: number;
  /** email-oauth2-proxy's option; ours defaults to false so a mistyped password costs nothing. */
  readonly deleteTokensOnWrongPassword: boolean;
  /**
   * `use_login_password_as_client_credentials_secret`, read at each use so a reload applies it:
   * client_credentials accounts without a client secret of their own send the login's password.
   */
  readonly loginPasswordIsAppSecret?: () => boolean;
  /** Tells the user what to run to authorise (the text depends on how the proxy was started). */
  readonly howToAuthorize: (account: string) => string;
  /** Lifetime and caps of pending authorisations; {@link DEFAULT_PENDING_LIMITS} when absent. */
  readonly pendingLimits?: PendingLimits;
}

/** Token events, for the notification hook and the logs. */
export type TokenEvent =
  | { readonly type: 'token_obtained'; readonly account: string }
  | { readonly type: 'token_refreshed'; readonly account: string }
  | {
      readonly type: 'refresh_failed';
      readonly account: string;
      readonly reason: string;
      readonly kind: OAuthError['kind'];
    }
  | {
      readonly type: 'authorisation_needed';
      readonly account: string;
      readonly url: string;
      readonly userCode?: string;
      readonly reason: string;
    };

/** An account whose key the daemon knows (a client logged in), for background refreshes. */
export interface KnownAccount {
  readonly subject: TokenSubject;
  readonly key: AccountKey;
}

/**
 * Turns (account, password) into a usable access token. Per account, as `status` shows it:
 *
 *   none ──login──► pending ──paste / device / redirect──► (a proven password waits?) ─yes─► active
 *    ▲                 │  expires (1 h), or caps reached: refused     │ no: authorised-unsaved
 *    │                 └◄── tokens another instance stored ──────────►│   ──authorize + password──► active
 *    │
 *   active ──expiring──► refreshing (store.update: the account's lock; theirs if newer) ──► active
 *    ▲                        ├─ transient: every token kept, "try again later" ───────────► expired
 *    │                        ├─ reauthorise: the dead tokens dropped ──► needs-reauthorisation ──► pending
 *    │                        └─ config: say which key to fix
 *    └── wrong password: refused, tokens untouched (or deleted, with
 *        delete_account_token_on_password_error: then no waiting login's password is proven)
 *
 * `oauth2_flow = password` has no pending authorisations: wherever the diagram authorises, the
 * login's password (the account's own) goes to the provider in a password grant, and the provider
 * also judges a password that does not unlock the stored tokens (the user may have changed it).
 * `client_credentials` and `service_account` have none either, nor refresh tokens: wherever the
 * diagram authorises or refreshes, they ask for a new access token (one request per account).
 *
 * After the first login the account's derived key (never the password) is kept, so refreshed
 * tokens can be saved and idle accounts refreshed in the background. So is a client secret stored
 * encrypted (`client_secret_encrypted`): the login that opens the tokens decrypts it, every request
 * for the account sends it, and every save re-encrypts it with the tokens (see client-secret.ts).
 */
export class TokenManager extends EventEmitter<{ event: [TokenEvent]; known: [KnownAccount] }> {
  readonly pending: PendingAuthorizations;
  /** One refresh per account at a time in this process, shared by every login that needs it. */
  private readonly refreshes = new SingleFlight<string>();
  /** Grants without a sign-in: app-only, service account, the account's own password. */
  private readonly grants: UnattendedGrants;
  /** Accounts whose access token the upstream refused: refresh on next use. */
  private readonly distrusted = new Set<string>();
  /**
   * Accounts whose tokens a wrong password deleted (`delete_account_token_on_password_error`):
   * until new tokens are stored, no waiting login may set their password.
   */
  private readonly contested = new Set<string>();
  /** Accounts whose last token request the provider answered "authorise again". */
  private readonly reauthorise = new Set<string>();
  /** When the last `authorisation_needed` events went out, for their rate limit. */
  private readonly notified: number[] = [];
  private readonly stopWatching: () => void;
  /** Tokens authorised while no login was waiting; the next login's password encrypts them. */
  private readonly unsaved = new Map<string, TokenSet>();
  /**
   * Encrypted fields the store refused to take (read-only or full disk). They are newer than the
   * file (the provider has already rotated the refresh token on it), so they are used instead of
   * it and written as soon as the store accepts them.
   */
  private readonly unwritten = new Map<string, StoredTokenFields>();
  /**
   * Per account, the fields the store last returned. With a shared store unreachable, a login
   * whose access token is still valid opens these and goes on; anything that must write fails.
   */
  private readonly lastRead = new Map<string, StoredTokenFields>();
  private readonly flushing = new Set<string>();
  /** The last refresh attempt per account and how it went, for `status`. */
  readonly lastRefresh = new Map<string, { at: number; outcome: string }>();
  private readonly secrets: ClientSecrets;

  constructor(private readonly options: TokenManagerOptions) {
    super();
    this.secrets = new ClientSecrets(options.keys);
    this.grants = new UnattendedGrants({
      log: options.log,
      keys: options.keys,
      oauthFor: (subject) => this.oauthFor(subject),
      save: (subject, tokens, key) => this.save(subject, tokens, key),
      recordOutcome: (subject, outcome, kind) => this.recordOutcome(subject.key, outcome, kind),
      announce: (subject) => this.emit('event', { type: 'token_obtained', account: subject.key }),
      known: (subject, key) => this.emit('known', { subject, key }),
      loginPasswordIsAppSecret: () => options.loginPasswordIsAppSecret?.() ?? false,
    });
    this.pending = new PendingAuthorizations(
      (subject) => this.oauthFor(subject),
      (completed) => this.saveCompleted(completed),
      options.pendingLimits,
    );
    this.pending.on('pending', (pending) => {
      if (!this.mayNotify(pending.key)) return;
      this.emit('event', {
        type: 'authorisation_needed',
        account: pending.key,
        url: pending.url,
        ...(pending.userCode && { userCode: pending.userCode }),
        reason: options.howToAuthorize(pending.key),
      });
    });
    this.stopWatching = options.store.onChange((account) => this.changedElsewhere(account));
  }

  /** Stops listening to the store and ends every pending authorisation. */
  close(): void {
    this.stopWatching();
    this.pending.close();
  }

  /**
   * At most {@link NOTIFICATIONS_PER_MINUTE} `authorisation_needed` events a minute: each may run
   * the notification command, and a catch-all section lets anyone make up addresses.
   */
  private mayNotify(account: string): boolean {
    const now = Date.now();
    while (this.notified.length > 0 && this.notified[0]! <= now - 60_000) this.notified.shift();
    if (this.notified.length >= NOTIFICATIONS_PER_MINUTE) {
      this.options.log.warn(
        { event: 'notification_suppressed', account },
        'too many authorisations needed this minute; no notification sent for this one',
      );
      return false;
    }
    this.notified.push(now);
    return true;
  }

  /**
   * Another process or instance changed the account's stored fields: what was known of them here
   * is dropped, and when they now hold tokens, a login waiting for an authorisation here gets them
   * if its password opens them (that is how `authorize` on one instance completes a login waiting
   * on another); the other waiting logins are told to log in again.
   */
  private changedElsewhere(account: string): void {
    this.unwritten.delete(account);
    this.distrusted.delete(account);
    const subject = this.pending.subject(account);
    if (!subject) return;
    void this.readFields(subject).then(
      (fields) => {
        if (fields?.access_token === undefined && fields?.refresh_token === undefined) return;
        this.contested.delete(account);
        this.pending.settledElsewhere(account, (password) =>
          this.options.keys.unlock(fields, password).then(
            () => this.accessToken(subject, password),
            () => undefined,
          ),
        );
      },
      () => undefined,
    );
  }

  /** @throws LoginFailure */
  async accessToken(subject: TokenSubject, password: string): Promise<string> {
    const fields = await this.readFields(subject);
    if (fields?.access_token === undefined && fields?.refresh_token === undefined) {
      await this.learnClientSecret(subject, fields, password);
      return this.withoutToken(subject, password);
    }

    let key: AccountKey;
    let tokens: DecryptedTokens;
    try {
      ({ key, tokens } = await this.options.keys.unlock(fields, password));
    } catch (err) {
      if (err instanceof WrongKeyError) return this.wrongPassword(subject, password, fields);
      if (err instanceof CorruptTokenError) {
        this.options.log.warn(
          { event: 'tokens_unreadable', account: subject.key, problem: err.message },
          'stored tokens are unusable; authorisation needed',
        );
        await this.learnClientSecret(subject, fields, password);
        return this.withoutToken(subject, password);
      }
      throw err;
    }
    // With the key that opened the tokens: the one client_secret_encrypted was encrypted with.
    await this.learnClientSecret(subject, fields, password, key);
    // Stores from older email-oauth2-proxy versions move to the current iteration count at the next save.
    if (key.iterations < DEFAULT_ITERATIONS) key = await this.options.keys.create(password);
    this.emit('known', { subject, key });

    if (tokens.accessToken && this.isFresh(tokens) && !this.distrusted.has(subject.key))
      return tokens.accessToken;
    if (!tokens.refreshToken) return this.withoutToken(subject, password, key);
    return this.sharedRefresh(subject, key, tokens.refreshToken, password);
  }

  /**
   * Whether the account's last token request found its grant dead (the provider said to
   * authorise again), for `status`.
   */
  needsReauthorization(key: string): boolean {
    return this.reauthorise.has(key);
  }

  /** How the account's last token request went: the text `status` shows, and its kind. */
  private recordOutcome(key: string, outcome: string, kind?: OAuthError['kind']): void {
    this.lastRefresh.set(key, { at: Date.now(), outcome });
    if (kind === 'reauthorise') this.reauthorise.add(key);
    else this.reauthorise.delete(key);
  }

  /** The upstream refused an access token we thought valid: the next login refreshes. */
  distrust(key: string): void {
    this.distrusted.add(key);
  }

  /**
   * Refreshes a known account now if its access token is due, or regardless with `force`
   * (background keep-alive). Undefined when there is no refresh token to use.
   *
   * @throws LoginFailure as a login would get it; WrongKeyError when the store was re-encrypted
   *   under another password meanwhile.
   */
  async refreshIfDue(
    known: KnownAccount,
    force: boolean,
    intervalMs = 0,
  ): Promise<
    { expiry: number | undefined; refreshed: boolean; lastActivityMs?: number } | undefined
  > {
    const fields = await this.readFields(known.subject);
    if (!fields?.refresh_token) return undefined;
    const tokens = this.options.keys.open(known.key, fields);
    if (!tokens.refreshToken) return undefined;
    // Tokens written within the interval (another instance's keep-alive, a login's refresh) have
    // just used the refresh token: one keep-alive refresh per interval for the whole fleet.
    const lastActivityMs = Number(fields.last_activity) * 1000;
    if (force && Date.now() - lastActivityMs < intervalMs) force = false;
    if (!force && this.isFresh(tokens))
      return {
        expiry: tokens.accessTokenExpiry,
        refreshed: false,
        ...(Number.isFinite(lastActivityMs) && { lastActivityMs }),
      };
    await this.sharedRefresh(known.subject, known.key, tokens.refreshToken);
    const after = await this.readFields(known.subject);
    return {
      expiry:
        after?.access_token_expiry === undefined ? undefined : Number(after.access_token_expiry),
      refreshed: true,
    };
  }

  /** Starts (or joins) the account's authorisation, for the CLI's `authorize`. */
  authorize(subject: TokenSubject): Promise<PendingView> {
    this.unsaved.delete(subject.key);
    return this.pending.begin(subject);
  }

  /**
   * Stores tokens authorised while no login was waiting, encrypted with `password` (the mail
   * client's, typed into `authorize`), so the next login need not be the one that sets it. False
   * when there are none (already stored by a login).
   */
  async storeAuthorized(subject: TokenSubject, password: string): Promise<boolean> {
    const tokens = this.unsaved.get(subject.key);
    if (!tokens) return false;
    this.unsaved.delete(subject.key);
    const key = await this.options.keys.create(password);
    await this.save(subject, tokens, key);
    this.emit('known', { subject, key });
    this.pending.passwordGiven(subject, password, tokens.accessToken);
    return true;
  }

  /** Authorised but not yet stored (no login has supplied a password since). */
  isUnsaved(key: string): boolean {
    return this.unsaved.has(key);
  }

  unsavedKeys(): string[] {
    return [...this.unsaved.keys()];
  }

  /** Reads an account's stored fields: the token store first, then tokens left in the config file. */
  async readFields(subject: TokenSubject): Promise<StoredTokenFields | undefined> {
    const unwritten = this.unwritten.get(subject.key);
    if (unwritten) {
      this.flushUnwritten(subject.key, unwritten);
      return unwritten;
    }
    try {
      const { fields, fromStore } = await readFields(this.options.store, subject);
      if (fromStore && fields !== undefined) this.lastRead.set(subject.key, fields);
      else this.lastRead.delete(subject.key);
      return fields;
    } catch (err) {
      const known = this.lastRead.get(subject.key);
      if (err instanceof TokenStoreUnavailableError && known !== undefined) {
        this.options.log.debug(
          { event: 'token_store_unavailable', account: subject.key, err: err.message },
          'token store unreachable; using the tokens it last returned',
        );
        return known;
      }
      this.options.log.error(
        { event: 'token_store_unreadable', err: (err as Error).message },
        'cannot read the token store',
      );
      throw new LoginFailure(
        'temporary',
        `The proxy cannot read its token store: ${(err as Error).message}`,
      );
    }
  }

  /** The provider-client options of one request for the account, with its decrypted client secret. */
  private oauthFor(subject: TokenSubject): Promise<ProviderClientOptions> {
    return this.secrets.options(subject, this.options.oauth, () => this.readFields(subject));
  }

  /** Decrypts the account's `client_secret_encrypted`, if any, with the login's password. */
  private async learnClientSecret(
    subject: TokenSubject,
    fields: StoredTokenFields | undefined,
    password: string,
    unlocked?: AccountKey,
  ): Promise<void> {
    try {
      await this.secrets.learn(subject, fields, password, unlocked);
    } catch (err) {
      if (!(err instanceof EncryptedClientSecretError)) throw err;
      if (err.problem === 'wrong-password') {
        this.options.log.info(
          { event: 'wrong_password', account: subject.key },
          'password does not decrypt the stored client secret',
        );
        throw new LoginFailure('bad-password', err.message);
      }
      this.options.log.warn(
        { event: 'client_secret_undecryptable', account: subject.key },
        err.message,
      );
      throw new LoginFailure('config', err.message);
    }
  }

  private isFresh(tokens: DecryptedTokens): boolean {
    return (
      tokens.accessTokenExpiry !== undefined &&
      tokens.accessTokenExpiry - this.options.refreshMarginSeconds > Date.now() / 1000
    );
  }

  /**
   * `password` is the login's, when a login asked: should the refresh token turn out dead, the
   * login waits for the new authorisation like any other (background refreshes have none).
   */
  private sharedRefresh(
    subject: TokenSubject,
    key: AccountKey,
    refreshToken: string,
    password?: string,
  ): Promise<string> {
    return this.refreshes.run(subject.key, () =>
      this.refreshLocked(subject, key, refreshToken, password),
    );
  }

  /**
   * One refresh per account across every process and instance sharing the store: under the
   * account's lock the stored tokens are read again, and when someone else has refreshed (or
   * authorised) meanwhile, theirs are used; otherwise the refresh runs and its tokens are written
   * before the lock is released, first thing after they arrive: a provider that rotates refresh
   * tokens has already voided the old one.
   */
  private async refreshLocked(
    subject: TokenSubject,
    key: AccountKey,
    used: string,
    password: string | undefined,
  ): Promise<string> {
    let decided = false;
    let sealed: StoredTokenFields | undefined;
    let outcome: RefreshOutcome;
    try {
      outcome = await this.options.store.update<RefreshOutcome>(subject.key, async (current) => {
        decided = true;
        const stored = this.unwritten.get(subject.key) ?? current ?? subject.account.tokensInConfig;
        const theirs = stored && tryOpen(this.options.keys, key, stored);
        if (theirs?.refreshToken && theirs.refreshToken !== used) {
          if (theirs.accessToken && this.isFresh(theirs) && !this.distrusted.has(subject.key))
            return { change: { kind: 'keep' }, result: { kind: 'theirs', tokens: theirs } };
          used = theirs.refreshToken;
        }
        const result = await this.refreshRequest(subject, used);
        if (result.kind === 'dead') {
          // The dead tokens go; the salt and an encrypted client secret stay for the next ones.
          const change: AccountChange =
            current === undefined
              ? { kind: 'keep' }
              : { kind: 'write', fields: withoutTokens(current) };
          return { change, result };
        }
        const fields = (sealed = this.seal(subject, result.tokens, key));
        // Kept in memory first: should the write fail, the rotated refresh token is not lost.
        // (Marked as being written, so that a read meanwhile does not write it a second time.)
        this.unwritten.set(subject.key, fields);
        this.flushing.add(subject.key);
        return { change: { kind: 'write', fields }, result };
      });
      if (outcome.kind === 'refreshed') this.unwritten.delete(subject.key);
    } catch (err) {
      if (err instanceof LoginFailure) throw err;
      this.flushing.delete(subject.key);
      if (sealed) {
        // The provider answered and the store refused the tokens: they stay in memory.
        this.storeRefused(subject.key, err);
        const opened = this.options.keys.open(key, sealed);
        return this.refreshed(subject, opened.accessToken ?? '');
      }
      if (decided) throw err;
      // No lock could be taken (a read-only directory): refresh without it, as a lone process would.
      this.options.log.warn(
        { event: 'token_store_unlockable', account: subject.key, err: (err as Error).message },
        'cannot lock the token store; refreshing without the lock',
      );
      const result = await this.refreshRequest(subject, used);
      if (result.kind === 'dead')
        return this.refreshTokenDead(subject, key, result.failure, password);
      await this.save(subject, result.tokens, key);
      return this.refreshed(subject, result.tokens.accessToken);
    }
    this.flushing.delete(subject.key);
    switch (outcome.kind) {
      case 'theirs':
        return outcome.tokens.accessToken ?? '';
      case 'dead':
        return this.refreshTokenDead(subject, key, outcome.failure, password);
      case 'refreshed':
        return this.refreshed(subject, outcome.tokens.accessToken);
    }
  }

  /** Asks the provider; a dead refresh token is an outcome, other failures are thrown as login failures. */
  private async refreshRequest(
    subject: TokenSubject,
    refreshToken: string,
  ): Promise<Exclude<RefreshOutcome, { kind: 'theirs' }>> {
    const started = Date.now();
    try {
      const tokens = await refresh(subject.account, refreshToken, await this.oauthFor(subject));
      this.recordOutcome(subject.key, 'ok');
      // Logged as it arrives; the write follows at once (a log line costs no measurable time).
      this.options.log.info(
        {
          event: 'token_refreshed',
          account: subject.key,
          durationMs: Date.now() - started,
          rotated: tokens.refreshTokenKept === false,
        },
        'access token refreshed',
      );
      return { kind: 'refreshed', tokens };
    } catch (err) {
      const failure = classifyOAuthFailure(err, 'refresh');
      // With the password flow nobody needs to authorise: the next login's password gets new tokens.
      const hint =
        failure.kind === 'reauthorise' && subject.account.flow === 'password'
          ? SIGN_IN_AGAIN_WITH_PASSWORD
          : failure.hint;
      this.recordOutcome(
        subject.key,
        failure.kind === 'transient'
          ? `failed (${failure.code}); tokens kept`
          : `failed (${failure.code}): ${failure.kind}`,
        failure.kind,
      );
      this.options.log.warn(
        {
          event: 'refresh_failed',
          account: subject.key,
          kind: failure.kind,
          code: failure.code,
          aadsts: failure.aadsts,
        },
        failure.message,
      );
      this.emit('event', {
        type: 'refresh_failed',
        account: subject.key,
        kind: failure.kind,
        reason: `${failure.message}. ${hint}`,
      });
      if (failure.kind === 'reauthorise') return { kind: 'dead', failure };
      if (failure.kind === 'config') {
        throw new LoginFailure(
          'config',
          `Account ${subject.key} cannot get tokens: ${failure.message}. ${failure.hint}`,
        );
      }
      throw new LoginFailure(
        'temporary',
        `Cannot refresh the OAuth2 token for ${subject.key}: ${failure.message}. The stored tokens are kept; try again later`,
      );
    }
  }

  /** Tells of a refresh whose tokens are saved (or kept in memory). */
  private refreshed(subject: TokenSubject, accessToken: string): string {
    this.distrusted.delete(subject.key);
    this.emit('event', { type: 'token_refreshed', account: subject.key });
    return accessToken;
  }

  /**
   * The provider refused the refresh token, and (under the lock) nobody had stored a newer one:
   * the dead tokens are gone from the store and the account needs authorising.
   */
  private async refreshTokenDead(
    subject: TokenSubject,
    key: AccountKey,
    failure: OAuthError,
    password: string | undefined,
  ): Promise<string> {
    this.unwritten.delete(subject.key);
    if (subject.account.flow === 'password') {
      this.options.log.info(
        { event: 'refresh_token_dropped', account: subject.key, reason: failure.code },
        SIGN_IN_AGAIN_WITH_PASSWORD,
      );
    } else {
      this.options.log.warn(
        { event: 'authorisation_needed', account: subject.key, reason: failure.code },
        failure.hint,
      );
    }
    return this.withoutToken(subject, password, key);
  }

  private async wrongPassword(
    subject: TokenSubject,
    password: string,
    fields: StoredTokenFields,
  ): Promise<string> {
    if (subject.account.flow === 'password') {
      // Only the provider knows whether this is a typo or the account's new password. Either way
      // the stored tokens stay until it accepts the password; then new ones replace them.
      this.options.log.info(
        { event: 'wrong_password', account: subject.key },
        'password does not unlock the stored tokens; asking the identity provider',
      );
      return this.grants.password(subject, password);
    }
    const secretStoredHere =
      !subject.account.clientSecret && fields.client_secret_encrypted !== undefined;
    if (this.options.deleteTokensOnWrongPassword && secretStoredHere) {
      // Deleting the section would delete the only copy of the client secret, and without it no
      // new authorisation could succeed: only the old password can still decrypt it.
      this.options.log.warn(
        { event: 'wrong_password', account: subject.key },
        'wrong password: tokens kept despite delete_account_token_on_password_error, because client_secret_encrypted is stored with them',
      );
      throw new LoginFailure(
        'bad-password',
        `Wrong password for ${subject.loginName}: it does not decrypt the account's stored OAuth2 tokens. They were not deleted, because the client secret is stored encrypted with them (client_secret_encrypted); to change the password, put the secret in client_secret`,
      );
    }
    if (this.options.deleteTokensOnWrongPassword && !this.grants.providerJudgesPassword(subject)) {
      // Where nobody signs in (app-only, service account), the password that encrypts the stored
      // token is all that stands between a local user and the mailbox: deleting the token would let
      // any password in (email-oauth2-proxy refuses here too).
      this.options.log.warn(
        { event: 'wrong_password', account: subject.key },
        'wrong password: token kept despite delete_account_token_on_password_error, because nobody signs in for this account',
      );
      throw new LoginFailure(
        'bad-password',
        `Wrong password for ${subject.loginName}: it does not decrypt the account's stored token, and with oauth2_flow = ${subject.account.flow} a wrong password never replaces it; to change the password, remove [${subject.key}] from the token store`,
      );
    }
    if (this.options.deleteTokensOnWrongPassword) {
      this.options.log.warn(
        { event: 'tokens_deleted', account: subject.key },
        'wrong password: tokens deleted (delete_account_token_on_password_error)',
      );
      await this.options.store.remove(subject.key);
      this.contested.add(subject.key);
      return this.withoutToken(subject, password);
    }
    this.options.log.info(
      { event: 'wrong_password', account: subject.key },
      'password does not unlock the stored tokens',
    );
    throw new LoginFailure(
      'bad-password',
      `Wrong password for ${subject.loginName}: it does not decrypt the account's stored OAuth2 tokens`,
    );
  }

  /**
   * No usable token: take one authorised without a waiting login, get an app-only one, or start
   * (or join) an authorisation. `key` is the account's key when the password already unlocked it.
   */
  private async withoutToken(
    subject: TokenSubject,
    password: string | undefined,
    known?: AccountKey,
  ): Promise<string> {
    const keyFor = async (): Promise<AccountKey> =>
      known ?? (await this.options.keys.create(password ?? ''));
    // After a wrong password deleted the account's tokens, no login's password is proven until
    // the owner stores new tokens with `authorize` in a terminal: it may be anyone's.
    const vouched = known !== undefined || !this.contested.has(subject.key);
    const ready = this.unsaved.get(subject.key);
    if (ready && password !== undefined && vouched) {
      this.unsaved.delete(subject.key);
      await this.save(subject, ready, await keyFor());
      return ready.accessToken;
    }
    if (ready && password !== undefined) {
      // Authorised, but this login's password may be anyone's: it waits for the owner's.
      return this.pending.awaitOwner(
        subject.key,
        password,
        this.options.loginWaitMs,
        () =>
          new LoginFailure(
            'authorisation-needed',
            `${subject.loginName} was authorised, but a wrong password had deleted its tokens, so only the password typed into authorize in a terminal may protect the new ones (${this.options.howToAuthorize(subject.key)})`,
          ),
      );
    }
    if (subject.account.flow === 'client_credentials')
      return this.grants.appOnly(subject, keyFor, password);
    if (subject.account.flow === 'service_account')
      return this.grants.serviceAccount(subject, keyFor);
    if (subject.account.flow === 'password') {
      if (password === undefined) {
        // A background refresh found the refresh token dead; the next login's password gets new tokens.
        throw new LoginFailure(
          'authorisation-needed',
          `${subject.loginName} has no usable refresh token; the next login gets new tokens with its password`,
        );
      }
      return this.grants.password(subject, password, known);
    }

    try {
      await this.pending.begin(subject);
    } catch (err) {
      if (err instanceof TooManyPendingError) {
        this.options.log.warn(
          { event: 'authorisation_refused', account: subject.key, reason: err.message },
          'no new authorisation started: too many are pending',
        );
        throw new LoginFailure(
          'temporary',
          `${subject.loginName} needs authorising, but ${err.message}; try again later`,
        );
      }
      const failure = classifyOAuthFailure(err, 'authorization_response');
      throw new LoginFailure(
        'config',
        `Account ${subject.key} cannot be authorised: ${failure.message}. ${failure.hint}`,
      );
    }
    const needed = (): LoginFailure =>
      new LoginFailure(
        'authorisation-needed',
        `${subject.loginName} needs authorising: ${this.options.howToAuthorize(subject.key)}`,
      );
    if (password === undefined) throw needed();
    return this.pending.wait(subject.key, password, vouched, this.options.loginWaitMs, needed);
  }

  private async saveCompleted({
    subject,
    tokens,
    password,
  }: CompletedAuthorization): Promise<void> {
    this.options.log.info({ event: 'token_obtained', account: subject.key }, 'account authorised');
    this.emit('event', { type: 'token_obtained', account: subject.key });
    if (password === undefined) {
      this.unsaved.set(subject.key, tokens);
      return;
    }
    const key = await this.options.keys.create(password);
    await this.save(subject, tokens, key);
    this.emit('known', { subject, key });
  }

  /**
   * Encrypts and stores. A failed write is logged loudly but the login goes on: the token is
   * valid, and refusing the user mail would not bring the disk back. The fields are kept in memory
   * and written when the store takes them again.
   */
  private async save(subject: TokenSubject, tokens: TokenSet, key: AccountKey): Promise<void> {
    // New tokens, whichever way they came: the upstream's refusal of the old one no longer applies.
    this.distrusted.delete(subject.key);
    this.contested.delete(subject.key);
    const fields = this.seal(subject, tokens, key);
    this.unwritten.delete(subject.key);
    try {
      await this.options.store.write(subject.key, fields);
    } catch (err) {
      this.unwritten.set(subject.key, fields);
      this.storeRefused(subject.key, err);
    }
  }

  /** The fields the store keeps for these tokens under `key`. */
  private seal(subject: TokenSubject, tokens: TokenSet, key: AccountKey): StoredTokenFields {
    // The client secret is re-encrypted with whatever key the tokens get, so a new salt never strands it.
    return this.secrets.seal(
      subject,
      key,
      this.options.keys.seal(key, {
        accessToken: tokens.accessToken,
        accessTokenExpiry: tokens.expiresAt,
        ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
      }),
    );
  }

  private storeRefused(account: string, err: unknown): void {
    this.options.log.error(
      { event: 'token_store_write_failed', account, err: (err as Error).message },
      'could not save tokens; they are kept in memory and written when the store accepts them (until then a restart loses them)',
    );
  }

  /** Retries writing fields the store refused earlier; one attempt per account at a time. */
  private flushUnwritten(key: string, fields: StoredTokenFields): void {
    if (this.flushing.has(key)) return;
    this.flushing.add(key);
    this.options.store
      .write(key, fields)
      .then(
        () => {
          if (this.unwritten.get(key) === fields) this.unwritten.delete(key);
          this.options.log.info(
            { event: 'token_store_written', account: key },
            'tokens kept in memory are now saved',
          );
        },
        () => undefined,
      )
      .finally(() => this.flushing.delete(key));
  }
}

/** How many `authorisation_needed` notifications may go out in a minute. */
const NOTIFICATIONS_PER_MINUTE = 10;

const SIGN_IN_AGAIN_WITH_PASSWORD =
  'The refresh token was refused; the login under way (or else the next one) gets new tokens with the password grant.';

type RefreshOutcome =
  /** New tokens from the provider, stored (or kept in memory when the store refused them). */
  | { readonly kind: 'refreshed'; readonly tokens: TokenSet }
  /** Another process or instance had refreshed meanwhile; its fresh access token is used. */
  | { readonly kind: 'theirs'; readonly tokens: DecryptedTokens }
  /** The provider refused the refresh token and nobody had a newer one. */
  | { readonly kind: 'dead'; readonly failure: OAuthError };

/** The fields without the dead tokens (the salt and an encrypted client secret stay). */
function withoutTokens(fields: StoredTokenFields): StoredTokenFields {
  const { access_token: _a, access_token_expiry: _e, refresh_token: _r, ...rest } = fields;
  return rest;
}

function tryOpen(
  keys: AccountKeys,
  key: AccountKey,
  fields: StoredTokenFields,
): DecryptedTokens | undefined {
  try {
    return keys.open(key, fields);
  } catch {
    return undefined;
  }
}

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
  PendingAuthorisations,
  type CompletedAuthorisation,
  type PendingView,
} from './pending-authorisations.js';
import type { TokenStore } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';
import type { AccountKey, AccountKeys, DecryptedTokens } from './token-cipher.js';
import { UnattendedGrants } from './unattended-grants.js';

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
  readonly howToAuthorise: (account: string) => string;
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
 * Turns (account, password) into a usable access token. Per account:
 *
 *   stored tokens ── unlock with the password ──► wrong key: refuse (tokens untouched)
 *        │ valid access token ─────────────────► use it
 *        │ expired/expiring ──► one shared refresh ──► save the rotated tokens ──► use
 *        │                          ├─ transient: keep every token, "try again later"
 *        │                          ├─ reauthorise: drop the dead tokens ──► pending
 *        │                          └─ config: say which key to fix
 *        └ none ──► pending authorisation (one per account) ──► paste ──► save ──► use
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
  readonly pending: PendingAuthorisations;
  /** One refresh per account at a time, shared by every login that needs it. */
  private readonly refreshes = new Map<string, Promise<string>>();
  /** Grants without a sign-in: app-only, service account, the account's own password. */
  private readonly grants: UnattendedGrants;
  /** Accounts whose access token the upstream refused: refresh on next use. */
  private readonly distrusted = new Set<string>();
  /** Tokens authorised while no login was waiting; the next login's password encrypts them. */
  private readonly unsaved = new Map<string, TokenSet>();
  /**
   * Encrypted fields the store refused to take (read-only or full disk). They are newer than the
   * file (the provider has already rotated the refresh token on it), so they are used instead of
   * it and written as soon as the store accepts them.
   */
  private readonly unwritten = new Map<string, StoredTokenFields>();
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
      recordOutcome: (subject, outcome) =>
        this.lastRefresh.set(subject.key, { at: Date.now(), outcome }),
      announce: (subject) => this.emit('event', { type: 'token_obtained', account: subject.key }),
      known: (subject, key) => this.emit('known', { subject, key }),
      loginPasswordIsAppSecret: () => options.loginPasswordIsAppSecret?.() ?? false,
    });
    this.pending = new PendingAuthorisations(
      (subject) => this.oauthFor(subject),
      (completed) => this.saveCompleted(completed),
    );
    this.pending.on('pending', (pending) =>
      this.emit('event', {
        type: 'authorisation_needed',
        account: pending.key,
        url: pending.url,
        ...(pending.userCode && { userCode: pending.userCode }),
        reason: options.howToAuthorise(pending.key),
      }),
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
  ): Promise<{ expiry: number | undefined; refreshed: boolean } | undefined> {
    const fields = await this.readFields(known.subject);
    if (!fields?.refresh_token) return undefined;
    const tokens = this.options.keys.open(known.key, fields);
    if (!tokens.refreshToken) return undefined;
    if (!force && this.isFresh(tokens))
      return { expiry: tokens.accessTokenExpiry, refreshed: false };
    await this.sharedRefresh(known.subject, known.key, tokens.refreshToken);
    const after = await this.readFields(known.subject);
    return {
      expiry:
        after?.access_token_expiry === undefined ? undefined : Number(after.access_token_expiry),
      refreshed: true,
    };
  }

  /** Starts (or joins) the account's authorisation, for the CLI's `authorize`. */
  authorise(subject: TokenSubject): Promise<PendingView> {
    this.unsaved.delete(subject.key);
    return this.pending.begin(subject);
  }

  /**
   * Stores tokens authorised while no login was waiting, encrypted with `password` (the mail
   * client's, typed into `authorize`), so the next login need not be the one that sets it. False
   * when there are none (already stored by a login).
   */
  async storeAuthorised(subject: TokenSubject, password: string): Promise<boolean> {
    const tokens = this.unsaved.get(subject.key);
    if (!tokens) return false;
    this.unsaved.delete(subject.key);
    const key = await this.options.keys.create(password);
    await this.save(subject, tokens, key);
    this.emit('known', { subject, key });
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
      return (await this.options.store.read(subject.key)) ?? subject.account.tokensInConfig;
    } catch (err) {
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
    let flight = this.refreshes.get(subject.key);
    if (!flight) {
      flight = this.refreshOnce(subject, key, refreshToken, password).finally(() =>
        this.refreshes.delete(subject.key),
      );
      this.refreshes.set(subject.key, flight);
    }
    return flight;
  }

  private async refreshOnce(
    subject: TokenSubject,
    key: AccountKey,
    refreshToken: string,
    password: string | undefined,
  ): Promise<string> {
    const { log } = this.options;
    const started = Date.now();
    let tokens: TokenSet;
    try {
      tokens = await refresh(subject.account, refreshToken, await this.oauthFor(subject));
    } catch (err) {
      const failure = classifyOAuthFailure(err, 'refresh');
      // With the password flow nobody needs to authorise: the next login's password gets new tokens.
      const hint =
        failure.kind === 'reauthorise' && subject.account.flow === 'password'
          ? SIGN_IN_AGAIN_WITH_PASSWORD
          : failure.hint;
      this.lastRefresh.set(subject.key, {
        at: Date.now(),
        outcome:
          failure.kind === 'transient'
            ? `failed (${failure.code}); tokens kept`
            : `failed (${failure.code}): ${failure.kind}`,
      });
      log.warn(
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
      if (failure.kind === 'reauthorise')
        return this.refreshTokenDead(subject, key, refreshToken, failure, password);
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
    this.lastRefresh.set(subject.key, { at: Date.now(), outcome: 'ok' });
    log.info(
      {
        event: 'token_refreshed',
        account: subject.key,
        durationMs: Date.now() - started,
        rotated: tokens.refreshTokenKept === false,
      },
      'access token refreshed',
    );
    this.emit('event', { type: 'token_refreshed', account: subject.key });
    await this.save(subject, tokens, key);
    return tokens.accessToken;
  }

  /**
   * The provider refused the refresh token. If another process (the CLI, a second daemon) has
   * meanwhile stored a newer one, that one is used; otherwise the dead tokens are dropped and
   * the account needs authorising.
   */
  private async refreshTokenDead(
    subject: TokenSubject,
    key: AccountKey,
    used: string,
    failure: OAuthError,
    password: string | undefined,
  ): Promise<string> {
    const current = await this.readFields(subject);
    const newer = current?.refresh_token
      ? tryOpen(this.options.keys, key, current)?.refreshToken
      : undefined;
    if (newer && newer !== used) return this.refreshOnce(subject, key, newer, password);

    await this.options.store
      .remove(subject.key, ['access_token', 'access_token_expiry', 'refresh_token'])
      .catch((err: Error) =>
        this.options.log.error(
          { event: 'token_store_write_failed', account: subject.key, err: err.message },
          'cannot drop dead tokens',
        ),
      );
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
    const ready = this.unsaved.get(subject.key);
    if (ready && password !== undefined) {
      this.unsaved.delete(subject.key);
      await this.save(subject, ready, await keyFor());
      return ready.accessToken;
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
      const failure = classifyOAuthFailure(err, 'authorization_response');
      throw new LoginFailure(
        'config',
        `Account ${subject.key} cannot be authorised: ${failure.message}. ${failure.hint}`,
      );
    }
    const needed = (): LoginFailure =>
      new LoginFailure(
        'authorisation-needed',
        `${subject.loginName} needs authorising: ${this.options.howToAuthorise(subject.key)}`,
      );
    if (password === undefined) throw needed();
    const tokens = await this.pending.wait(subject.key, password, this.options.loginWaitMs, needed);
    return tokens.accessToken;
  }

  private async saveCompleted({
    subject,
    tokens,
    password,
  }: CompletedAuthorisation): Promise<void> {
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
    // The client secret is re-encrypted with whatever key the tokens get, so a new salt never strands it.
    const fields = this.secrets.seal(
      subject,
      key,
      this.options.keys.seal(key, {
        accessToken: tokens.accessToken,
        accessTokenExpiry: tokens.expiresAt,
        ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
      }),
    );
    this.unwritten.delete(subject.key);
    try {
      await this.options.store.write(subject.key, fields);
    } catch (err) {
      this.unwritten.set(subject.key, fields);
      this.options.log.error(
        { event: 'token_store_write_failed', account: subject.key, err: (err as Error).message },
        'could not save tokens; they are kept in memory and written when the store accepts them (until then a restart loses them)',
      );
    }
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

const SIGN_IN_AGAIN_WITH_PASSWORD =
  'The refresh token was refused; the login under way (or else the next one) gets new tokens with the password grant.';

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

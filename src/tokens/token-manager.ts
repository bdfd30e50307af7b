import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import type { AccountStatus, TokenState } from '../control/protocol.js';
import { classifyOAuthFailure, clientCredentials, refresh, type OAuthError, type ProviderClientOptions, type TokenSet } from '../oauth/index.js';
import { CorruptTokenError, WrongKeyError } from './fernet.js';
import { PendingAuthorisations, type CompletedAuthorisation, type PendingView } from './pending-authorisations.js';
import type { TokenStore } from './store.js';
import type { TokenSubject } from './subject.js';
import type { DecryptedTokens, TokenCipher } from './token-cipher.js';

export interface TokenManagerOptions {
  readonly store: TokenStore;
  readonly cipher: TokenCipher;
  readonly log: Logger;
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
  /** Tells the user what to run to authorise (the text depends on how the proxy was started). */
  readonly howToAuthorise: (account: string) => string;
}

/**
 * Turns (account, password) into a usable access token. Per account:
 *
 *   stored tokens ── decrypt with the password ──► wrong key: refuse (tokens untouched)
 *        │ valid access token ─────────────────► use it
 *        │ expired/expiring ──► one shared refresh ──► save the rotated tokens ──► use
 *        │                          ├─ transient: keep every token, "try again later"
 *        │                          ├─ reauthorise: drop the dead tokens ──► pending
 *        │                          └─ config: say which key to fix
 *        └ none ──► pending authorisation (one per account) ──► paste ──► save ──► use
 */
export class TokenManager {
  readonly pending: PendingAuthorisations;
  /** One refresh per account at a time, shared by every login that needs it. */
  private readonly refreshes = new Map<string, Promise<string>>();
  /** Accounts whose access token the upstream refused: refresh on next use. */
  private readonly distrusted = new Set<string>();
  /** Tokens authorised while no login was waiting; the next login's password encrypts them. */
  private readonly unsaved = new Map<string, TokenSet>();
  /** The last refresh attempt per account and how it went, for `status`. */
  private readonly lastRefresh = new Map<string, { at: number; outcome: string }>();

  constructor(private readonly options: TokenManagerOptions) {
    this.pending = new PendingAuthorisations(options.oauth, (completed) => this.saveCompleted(completed));
  }

  /** @throws LoginFailure */
  async accessToken(subject: TokenSubject, password: string): Promise<string> {
    const fields = await this.readFields(subject);
    if (fields?.access_token === undefined && fields?.refresh_token === undefined) {
      return this.withoutToken(subject, password);
    }

    let tokens: DecryptedTokens;
    try {
      tokens = await this.options.cipher.decryptTokens(fields, password);
    } catch (err) {
      if (err instanceof WrongKeyError) return this.wrongPassword(subject, password);
      if (err instanceof CorruptTokenError) {
        this.options.log.warn({ event: 'tokens_unreadable', account: subject.key, problem: err.message }, 'stored tokens are unusable; authorisation needed');
        return this.withoutToken(subject, password);
      }
      throw err;
    }

    const now = Date.now() / 1000;
    const fresh = tokens.accessTokenExpiry !== undefined && tokens.accessTokenExpiry - this.options.refreshMarginSeconds > now;
    if (tokens.accessToken && fresh && !this.distrusted.has(subject.key)) return tokens.accessToken;
    if (!tokens.refreshToken) return this.withoutToken(subject, password);
    return this.sharedRefresh(subject, password, tokens.refreshToken, fields);
  }

  /** The upstream refused an access token we thought valid: the next login refreshes. */
  distrust(key: string): void {
    this.distrusted.add(key);
  }

  private async readFields(subject: TokenSubject): Promise<StoredTokenFields | undefined> {
    try {
      return (await this.options.store.read(subject.key)) ?? subject.account.tokensInConfig;
    } catch (err) {
      this.options.log.error({ event: 'token_store_unreadable', err: (err as Error).message }, 'cannot read the token store');
      throw new LoginFailure('temporary', `The proxy cannot read its token store: ${(err as Error).message}`);
    }
  }

  private sharedRefresh(subject: TokenSubject, password: string, refreshToken: string, fields: StoredTokenFields): Promise<string> {
    let flight = this.refreshes.get(subject.key);
    if (!flight) {
      flight = this.refreshOnce(subject, password, refreshToken, fields).finally(() => this.refreshes.delete(subject.key));
      this.refreshes.set(subject.key, flight);
    }
    return flight;
  }

  private async refreshOnce(subject: TokenSubject, password: string, refreshToken: string, fields: StoredTokenFields): Promise<string> {
    const { log } = this.options;
    const started = Date.now();
    let tokens: TokenSet;
    try {
      tokens = await refresh(subject.account, refreshToken, this.options.oauth);
    } catch (err) {
      const failure = classifyOAuthFailure(err, 'refresh');
      this.lastRefresh.set(subject.key, { at: Date.now(), outcome: failure.kind === 'transient' ? `failed (${failure.code}); tokens kept` : `failed (${failure.code}): ${failure.kind}` });
      log.warn(
        { event: 'refresh_failed', account: subject.key, kind: failure.kind, code: failure.code, aadsts: failure.aadsts },
        failure.message,
      );
      if (failure.kind === 'reauthorise') return this.refreshTokenDead(subject, password, refreshToken, failure);
      if (failure.kind === 'config') {
        throw new LoginFailure('config', `Account ${subject.key} cannot get tokens: ${failure.message}. ${failure.hint}`);
      }
      throw new LoginFailure(
        'temporary',
        `Cannot refresh the OAuth2 token for ${subject.key}: ${failure.message}. The stored tokens are kept; try again later`,
      );
    }
    this.distrusted.delete(subject.key);
    this.lastRefresh.set(subject.key, { at: Date.now(), outcome: 'ok' });
    log.info({ event: 'token_refreshed', account: subject.key, durationMs: Date.now() - started, rotated: tokens.refreshTokenKept === false }, 'access token refreshed');
    await this.save(subject, tokens, password, fields);
    return tokens.accessToken;
  }

  /**
   * The provider refused the refresh token. If another process (the CLI, a second daemon) has
   * meanwhile stored a newer one, that one is used; otherwise the dead tokens are dropped and
   * the account needs authorising.
   */
  private async refreshTokenDead(subject: TokenSubject, password: string, used: string, failure: OAuthError): Promise<string> {
    const current = await this.readFields(subject);
    if (current?.refresh_token) {
      const reread = await this.options.cipher.decryptTokens(current, password).catch(() => undefined);
      if (reread?.refreshToken && reread.refreshToken !== used) {
        return this.refreshOnce(subject, password, reread.refreshToken, current);
      }
    }
    await this.options.store.remove(subject.key, ['access_token', 'access_token_expiry', 'refresh_token']).catch((err: Error) =>
      this.options.log.error({ event: 'token_store_write_failed', account: subject.key, err: err.message }, 'cannot drop dead tokens'),
    );
    this.options.log.warn({ event: 'authorisation_needed', account: subject.key, reason: failure.code }, failure.hint);
    return this.withoutToken(subject, password);
  }

  private async wrongPassword(subject: TokenSubject, password: string): Promise<string> {
    if (this.options.deleteTokensOnWrongPassword) {
      this.options.log.warn({ event: 'tokens_deleted', account: subject.key }, 'wrong password: tokens deleted (delete_account_token_on_password_error)');
      await this.options.store.remove(subject.key);
      return this.withoutToken(subject, password);
    }
    this.options.log.info({ event: 'wrong_password', account: subject.key }, 'password does not unlock the stored tokens');
    throw new LoginFailure(
      'bad-password',
      `Wrong password for ${subject.loginName}: it does not unlock the account's stored OAuth2 tokens`,
    );
  }

  /** No usable token: take one authorised without a waiting login, or start/join an authorisation. */
  private async withoutToken(subject: TokenSubject, password: string): Promise<string> {
    const ready = this.unsaved.get(subject.key);
    if (ready) {
      this.unsaved.delete(subject.key);
      await this.save(subject, ready, password, undefined);
      return ready.accessToken;
    }
    if (subject.account.flow === 'client_credentials') return this.sharedAppOnly(subject, password);
    try {
      await this.pending.begin(subject);
    } catch (err) {
      const failure = classifyOAuthFailure(err, 'authorization_response');
      throw new LoginFailure('config', `Account ${subject.key} cannot be authorised: ${failure.message}. ${failure.hint}`);
    }
    const needed = (): LoginFailure =>
      new LoginFailure('authorisation-needed', `${subject.loginName} needs authorising: ${this.options.howToAuthorise(subject.key)}`);
    const tokens = await this.pending.wait(subject.key, password, this.options.loginWaitMs, needed);
    return tokens.accessToken;
  }

  /**
   * `client_credentials`: the app authenticates as itself, nobody signs in, and there is no
   * refresh token; a new access token is simply requested when the old one expires.
   */
  private sharedAppOnly(subject: TokenSubject, password: string): Promise<string> {
    let flight = this.refreshes.get(subject.key);
    if (!flight) {
      flight = (async () => {
        let tokens: TokenSet;
        try {
          tokens = await clientCredentials(subject.account, this.options.oauth);
        } catch (err) {
          const failure = classifyOAuthFailure(err, 'client_credentials');
          this.lastRefresh.set(subject.key, { at: Date.now(), outcome: `failed (${failure.code}): ${failure.kind}` });
          throw new LoginFailure(failure.kind === 'transient' ? 'temporary' : 'config', `Cannot get an app-only token for ${subject.key}: ${failure.message}. ${failure.hint}`);
        }
        this.lastRefresh.set(subject.key, { at: Date.now(), outcome: 'ok' });
        await this.save(subject, tokens, password, undefined);
        return tokens.accessToken;
      })().finally(() => this.refreshes.delete(subject.key));
      this.refreshes.set(subject.key, flight);
    }
    return flight;
  }

  /** Starts (or joins) the account's authorisation, for the CLI's `authorize`. */
  authorise(subject: TokenSubject): Promise<PendingView> {
    this.unsaved.delete(subject.key);
    return this.pending.begin(subject);
  }

  /** What `status` shows for each account; reads the store but decrypts nothing. */
  async status(subjects: readonly TokenSubject[]): Promise<AccountStatus[]> {
    // Configured accounts, plus catch-all mailboxes this daemon has seen.
    const tokensInConfig = new Map(subjects.map((subject) => [subject.key, subject.account.tokensInConfig]));
    const keys = new Set([...tokensInConfig.keys(), ...this.pending.list().map((pending) => pending.key), ...this.unsaved.keys()]);
    const now = Date.now() / 1000;
    const result: AccountStatus[] = [];
    for (const key of keys) {
      const fields = (await this.options.store.read(key).catch(() => undefined)) ?? tokensInConfig.get(key);
      const expiry = fields?.access_token_expiry === undefined ? undefined : Number(fields.access_token_expiry);
      const pending = this.pending.get(key);
      const lastRefresh = this.lastRefresh.get(key);
      const hasTokens = fields?.access_token !== undefined || fields?.refresh_token !== undefined;
      const state: TokenState = pending
        ? 'pending'
        : this.unsaved.has(key)
          ? 'authorised-unsaved'
          : !hasTokens
            ? lastRefresh?.outcome.endsWith('reauthorise') ? 'needs-reauthorisation' : 'none'
            : expiry !== undefined && expiry > now ? 'active' : 'expired';
      result.push({
        account: key,
        state,
        hasRefreshToken: fields?.refresh_token !== undefined,
        ...(hasTokens && expiry !== undefined && Number.isFinite(expiry) && { accessTokenExpiry: expiry }),
        ...(lastRefresh && { lastRefresh }),
        ...(pending && {
          pending: { flow: pending.flow, url: pending.url, since: pending.since, waiting: pending.waiting, ...(pending.userCode && { userCode: pending.userCode }) },
        }),
      });
    }
    return result;
  }

  private async saveCompleted({ subject, tokens, password }: CompletedAuthorisation): Promise<void> {
    this.options.log.info({ event: 'token_obtained', account: subject.key }, 'account authorised');
    if (password === undefined) this.unsaved.set(subject.key, tokens);
    else await this.save(subject, tokens, password, undefined);
  }

  /**
   * Encrypts with the login's password and stores. A failed write is logged loudly but the login
   * goes on: the token is valid, and refusing the user mail would not bring the disk back.
   */
  private async save(subject: TokenSubject, tokens: TokenSet, password: string, previous: StoredTokenFields | undefined): Promise<void> {
    const iterations = Number(previous?.token_iterations);
    const existing = previous?.token_salt && Number.isInteger(iterations) ? { salt: previous.token_salt, iterations } : undefined;
    try {
      const fields = await this.options.cipher.encryptTokens(
        { accessToken: tokens.accessToken, accessTokenExpiry: tokens.expiresAt, ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }) },
        password,
        existing,
      );
      await this.options.store.write(subject.key, fields);
    } catch (err) {
      this.options.log.error(
        { event: 'token_store_write_failed', account: subject.key, err: (err as Error).message },
        'could not save tokens; the new refresh token will be lost on restart',
      );
    }
  }
}

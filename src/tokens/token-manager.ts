/**
 * Turns (account, password) into a usable access token, keeping one state per account
 * (account-slots.ts). The password opens the vault and goes no further; the slot keeps the key.
 *
 *                   login: the stored tokens open, fresh
 *   empty ───────────────────────────────────────────────► active ◄──────────────────────┐
 *    │ │ login: stored tokens due                           │ access token due          │ ok, or
 *    │ └───────────────────────────────────────────────────►▼                           │ theirs
 *    │ login: no usable tokens                            refreshing ───────────────────┘
 *    ▼                                                      ├──transient or config──► failed
 *   pending ◄──────────────────────────────┐                │    (the tokens kept)
 *    │                                     │                └──grant dead──► needs-reauthorization
 *    │                                     │                     (the tokens dropped)       │
 *    │                                     └───── at once, for the sign-in flows ───────────┘
 *    ├─sign-in; a proven password waits──► active
 *    ├─sign-in; none waits──► authorized-unsaved
 *    │    ─a login with a proven password, or authorize with the password──► active
 *    └─expires, refused, or stored elsewhere──► the state it came from
 *
 *   failed, needs-reauthorization ─login: fresh tokens stored─► active
 *                                 ─login: tokens due─► refreshing
 *   active ─login: the access token expired and there is no refresh token─► pending
 *   any ─authorize─► pending
 *   any ─wrong password, with delete_account_token_on_password_error─► empty
 *
 * `oauth2_flow = password`, `client_credentials` and `service_account` never wait in `pending`:
 * wherever the diagram signs in, they make their grant (the login's password, the app's secret,
 * the service account's key) and go to `active`, or to `failed` / `needs-reauthorization` as the
 * provider answers. A password that does not open the stored tokens is refused and changes
 * nothing, except with the password flow, where the provider judges it (the user may have changed
 * it). A refresh or grant that ends while a sign-in is pending changes only the state it returns
 * to, and tokens authorised while no login waited stay until a password stores them (moveTo).
 *
 * Grants, flows and pending authorisations return token sets; only this class and the refresher
 * it owns (refresher.ts) save tokens, through account-store.ts (the client secret re-encrypted
 * with them), and emit the events.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { loginFailureFromOAuth } from '../auth/oauth-login-failure.js';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import {
  classifyOAuthFailure,
  OAuthError,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import {
  AccountSlots,
  moveTo,
  settle,
  type AccountState,
  type ReturnState,
} from './account-slots.js';
import {
  PendingAuthorizations,
  TooManyPendingError,
  type CompletedAuthorization,
  type PendingLimits,
  type PendingView,
} from './pending-authorizations.js';
import { AccountStore } from './account-store.js';
import { NotificationLimit } from './notification-limit.js';
import { Refresher, type RefreshFrom } from './refresher.js';
import { SingleFlight } from './single-flight.js';
import type { TokenStore } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';
import {
  appSecretIsLoginPassword,
  GrantFailure,
  providerJudgesPassword,
  requestAppOnly,
  requestPasswordGrant,
  requestServiceAccount,
} from './unattended-grants.js';
import { Passphrase } from './vault/passphrase.js';
import {
  encryptedClientSecret,
  hasTokens,
  secretPasswordRefused,
  type AccountKey,
  type PlainTokens,
  type Vault,
} from './vault/vault.js';
import { judgeWrongPassword } from './wrong-password.js';

export interface TokenManagerOptions {
  readonly store: TokenStore;
  readonly vault: Vault;
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

/** What {@link TokenManager.refreshIfDue} did. */
export type BackgroundRefresh =
  | { readonly outcome: 'no-refresh-token' }
  /** No key this daemon holds opens the stored tokens (re-encrypted with another password). */
  | { readonly outcome: 'no-key' }
  | { readonly outcome: 'not-due'; readonly expiry?: number; readonly lastActivityMs?: number }
  | { readonly outcome: 'refreshed'; readonly expiry?: number };

export class TokenManager extends EventEmitter<{
  event: [TokenEvent];
  /** The account's key is held now: background refreshes can save what they get. */
  known: [TokenSubject];
}> {
  readonly pending: PendingAuthorizations;
  private readonly slots = new AccountSlots();
  private readonly stored: AccountStore;
  private readonly refresher: Refresher;
  /** Grants under way, one per account (per password, where it takes part). */
  private readonly grants = new SingleFlight<string>();
  /** New tokens being sealed and written, one save per account at a time. */
  private readonly saves = new SingleFlight<void>();
  private saveCount = 0;
  private readonly notifications: NotificationLimit;
  private readonly stopWatching: () => void;

  constructor(private readonly options: TokenManagerOptions) {
    super();
    this.stored = new AccountStore(options.store, options.vault, this.slots, options.log);
    this.refresher = new Refresher({
      slots: this.slots,
      stored: this.stored,
      vault: options.vault,
      log: options.log,
      isFresh: (tokens) => this.isFresh(tokens),
      oauthFor: (subject) => this.oauthFor(subject),
      emit: (event) => this.emit('event', event),
    });
    this.notifications = new NotificationLimit(options.log);
    this.pending = new PendingAuthorizations(
      (subject) => this.oauthFor(subject),
      (completed) => this.saveCompleted(completed),
      options.pendingLimits,
    );
    this.pending.on('pending', (pending) => {
      if (!this.notifications.allow(pending.key)) return;
      this.emit('event', {
        type: 'authorisation_needed',
        account: pending.key,
        url: pending.url,
        ...(pending.userCode && { userCode: pending.userCode }),
        reason: options.howToAuthorize(pending.key),
      });
    });
    this.pending.on('ended', ({ key }) => {
      const slot = this.slots.get(key);
      if (slot.state.name === 'pending') slot.state = slot.state.before;
    });
    this.stopWatching = options.store.onChange((account) => this.changedElsewhere(account));
  }

  /** Stops listening to the store and ends every pending authorisation. */
  close(): void {
    this.stopWatching();
    this.pending.close();
  }

  /** @throws LoginFailure */
  async accessToken(subject: TokenSubject, passphrase: Passphrase): Promise<string> {
    const slot = this.slots.get(subject.key);
    await this.saves.idle(subject.key);
    const fields = await this.readFields(subject);
    const opened = await this.options.vault.open(fields, passphrase, subject);
    if (opened.outcome === 'wrong-password') {
      if (opened.refusedBy === 'tokens') return this.wrongPassword(subject, passphrase, fields!);
      this.options.log.info(
        { event: 'wrong_password', account: subject.key },
        'password does not decrypt the stored client secret',
      );
      throw new LoginFailure('bad-password', secretPasswordRefused(subject.loginName));
    }
    if (opened.secretProblem !== undefined) {
      this.options.log.warn(
        { event: 'client_secret_undecryptable', account: subject.key },
        opened.secretProblem,
      );
      throw new LoginFailure('config', opened.secretProblem);
    }
    slot.clientSecret = opened.clientSecret ?? null;
    if (opened.unreadable !== undefined)
      this.options.log.warn(
        { event: 'tokens_unreadable', account: subject.key, problem: opened.unreadable },
        'stored tokens are unusable; authorisation needed',
      );

    const { key, tokens } = opened;
    if (!key) return this.withoutToken(subject, passphrase);
    slot.key = key;
    this.emit('known', subject);
    // Tokens authorised since are newer than the stored ones, and this password is proven.
    if (slot.state.name === 'authorized-unsaved')
      return this.withoutToken(subject, passphrase, key);
    if (tokens.accessToken && this.isFresh(tokens) && !slot.distrusted) {
      // Fresh tokens in the store settle whatever this daemon last saw go wrong.
      if (['empty', 'failed', 'needs-reauthorization'].includes(slot.state.name))
        slot.state = { name: 'active' };
      return tokens.accessToken;
    }
    if (!tokens.refreshToken) return this.withoutToken(subject, passphrase, key);
    return this.refreshOrReauthorize(
      subject,
      key,
      { ...tokens, refreshToken: tokens.refreshToken },
      passphrase,
    );
  }

  /** The account's state, for `status`. */
  state(key: string): AccountState {
    return this.slots.peek(key)?.state ?? { name: 'empty' };
  }

  /** How the account's last token request went, in words, for `status`. */
  lastOutcome(key: string): { readonly at: number; readonly outcome: string } | undefined {
    return this.slots.peek(key)?.lastOutcome;
  }

  /** Accounts holding tokens authorised while no login waited. */
  unsavedKeys(): string[] {
    return [...this.slots.inState('authorized-unsaved')];
  }

  /** The upstream refused an access token we thought valid: the next login refreshes. */
  distrust(key: string): void {
    this.slots.get(key).distrusted = true;
  }

  /**
   * Refreshes a known account now if its access token is due, or regardless with `force`
   * (background keep-alive), unless tokens were written within `intervalMs` (by another
   * instance's keep-alive, or a login's refresh): one keep-alive refresh per interval per fleet.
   *
   * @throws LoginFailure as a login would get it.
   */
  async refreshIfDue(
    subject: TokenSubject,
    force: boolean,
    intervalMs = 0,
  ): Promise<BackgroundRefresh> {
    const fields = await this.readFields(subject);
    if (!fields?.refresh_token) return { outcome: 'no-refresh-token' };
    const { key } = this.slots.get(subject.key);
    const tokens = key && this.options.vault.reopen(key, fields);
    if (!key || !tokens) return { outcome: 'no-key' };
    if (!tokens.refreshToken) return { outcome: 'no-refresh-token' };
    const lastActivityMs = Number(fields.last_activity) * 1000;
    if (force && Date.now() - lastActivityMs < intervalMs) force = false;
    if (!force && this.isFresh(tokens))
      return {
        outcome: 'not-due',
        ...(tokens.accessTokenExpiry !== undefined && { expiry: tokens.accessTokenExpiry }),
        ...(Number.isFinite(lastActivityMs) && { lastActivityMs }),
      };
    await this.refreshOrReauthorize(subject, key, { ...tokens, refreshToken: tokens.refreshToken });
    const after = await this.readFields(subject);
    return {
      outcome: 'refreshed',
      ...(after?.access_token_expiry !== undefined && {
        expiry: Number(after.access_token_expiry),
      }),
    };
  }

  /** Starts (or joins) the account's authorisation, for the CLI's `authorize`. */
  authorize(subject: TokenSubject): Promise<PendingView> {
    return this.beginAuthorization(subject);
  }

  /**
   * Stores tokens authorised while no login was waiting, encrypted with `passphrase` (the mail
   * client's, typed into `authorize`), so the next login need not be the one that sets it. False
   * when there are none (already stored by a login).
   */
  async storeAuthorized(subject: TokenSubject, passphrase: Passphrase): Promise<boolean> {
    const slot = this.slots.get(subject.key);
    if (slot.state.name !== 'authorized-unsaved') return false;
    const { tokens } = slot.state;
    slot.state = { name: 'active' };
    await this.saveNew(subject, tokens, () => this.options.vault.newKey(passphrase));
    this.pending.passwordGiven(subject, passphrase, tokens.accessToken);
    return true;
  }

  /** An account's stored fields, as logins see them (see {@link AccountStore.read}). */
  readFields(subject: TokenSubject): Promise<StoredTokenFields | undefined> {
    return this.stored.read(subject);
  }

  // ── Refreshing ──────────────────────────────────────────────────────────────────────────────

  /**
   * Refreshes, sharing the refresh with every login that needs it. Should the refresh token turn
   * out dead, each caller goes on its own way: a login (`passphrase`) makes its grant or waits for
   * the new authorisation like any other; a background refresh (none) is told to authorise.
   */
  private async refreshOrReauthorize(
    subject: TokenSubject,
    key: AccountKey,
    seen: RefreshFrom,
    passphrase?: Passphrase,
  ): Promise<string> {
    const end = await this.refresher.run(subject, key, seen);
    return end.kind === 'token' ? end.accessToken : this.withoutToken(subject, passphrase, key);
  }

  // ── Passwords that do not open the tokens ───────────────────────────────────────────────────

  /** The password does not open the stored tokens; what happens depends on the flow and options. */
  private async wrongPassword(
    subject: TokenSubject,
    passphrase: Passphrase,
    fields: StoredTokenFields,
  ): Promise<string> {
    const verdict = judgeWrongPassword(subject, fields, {
      deleteTokens: this.options.deleteTokensOnWrongPassword,
      providerJudges: providerJudgesPassword(subject, this.loginPasswordIsAppSecret()),
      log: this.options.log,
    });
    switch (verdict) {
      case 'ask-provider':
        return this.passwordGrant(subject, passphrase);
      case 'delete-tokens': {
        await this.options.store.remove(subject.key);
        const slot = this.slots.get(subject.key);
        slot.contested = true;
        moveTo(slot, { name: 'empty' });
        return this.withoutToken(subject, passphrase);
      }
      default:
        throw verdict;
    }
  }

  // ── Getting new tokens ──────────────────────────────────────────────────────────────────────

  /**
   * No usable token: take one authorised without a waiting login, make the flow's grant, or start
   * (or join) an authorisation. `known` is the account's key when the password already opened it.
   */
  private async withoutToken(
    subject: TokenSubject,
    passphrase: Passphrase | undefined,
    known?: AccountKey,
  ): Promise<string> {
    const slot = this.slots.get(subject.key);
    const keyFor = async (): Promise<AccountKey> => {
      if (known) return known;
      // Callers without a password (background refreshes) always hold the key.
      if (!passphrase) throw new Error(`no key to seal the tokens of ${subject.key} with`);
      return this.options.vault.newKey(passphrase);
    };
    // After a wrong password deleted the account's tokens, no login's password is proven until
    // the owner stores new tokens with `authorize` in a terminal: it may be anyone's.
    const vouched = known !== undefined || !slot.contested;
    if (slot.state.name === 'authorized-unsaved') {
      // A background refresh: the tokens authorised meanwhile wait for a login's password.
      if (!passphrase)
        throw new LoginFailure(
          'authorisation-needed',
          `${subject.loginName} was authorised; the next login stores the new tokens`,
        );
      if (vouched) {
        const { tokens } = slot.state;
        slot.state = { name: 'active' };
        await this.saveNew(subject, tokens, keyFor);
        return tokens.accessToken;
      }
      // Authorised, but this login's password may be anyone's: it waits for the owner's.
      return this.pending.awaitOwner(
        subject.key,
        passphrase,
        this.options.loginWaitMs,
        () =>
          new LoginFailure(
            'authorisation-needed',
            `${subject.loginName} was authorised, but a wrong password had deleted its tokens, so only the password typed into authorize in a terminal may protect the new ones (${this.options.howToAuthorize(subject.key)})`,
          ),
      );
    }
    switch (subject.account.flow) {
      case 'client_credentials':
        return this.appOnly(subject, keyFor, passphrase);
      case 'service_account':
        return this.obtain(subject, '', keyFor, async (options) => {
          const tokens = await requestServiceAccount(subject, options, this.options.log);
          this.options.log.info(
            { event: 'token_obtained', account: subject.key, flow: 'service_account' },
            'access token obtained with the service account key',
          );
          this.emit('event', { type: 'token_obtained', account: subject.key });
          return tokens;
        });
      case 'password':
        if (!passphrase) {
          // A background refresh found the refresh token dead; the next login's password gets new tokens.
          throw new LoginFailure(
            'authorisation-needed',
            `${subject.loginName} has no usable refresh token; the next login gets new tokens with its password`,
          );
        }
        return this.passwordGrant(subject, passphrase, known);
      case 'authorization_code':
      case 'device':
        return this.signIn(subject, passphrase, vouched);
    }
  }

  /** Starts (or joins) the account's sign-in and waits for it, as long as a login may. */
  private async signIn(
    subject: TokenSubject,
    passphrase: Passphrase | undefined,
    vouched: boolean,
  ): Promise<string> {
    try {
      await this.beginAuthorization(subject);
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
      throw loginFailureFromOAuth(
        classifyOAuthFailure(err, 'authorization_response'),
        `Account ${subject.key} cannot be authorised`,
      );
    }
    const needed = (): LoginFailure =>
      new LoginFailure(
        'authorisation-needed',
        `${subject.loginName} needs authorising: ${this.options.howToAuthorize(subject.key)}`,
      );
    if (!passphrase) throw needed();
    return this.pending.wait(subject.key, passphrase, vouched, this.options.loginWaitMs, needed);
  }

  private async beginAuthorization(subject: TokenSubject): Promise<PendingView> {
    const view = await this.pending.begin(subject);
    const slot = this.slots.get(subject.key);
    const { state } = slot;
    if (state.name !== 'pending' && this.pending.get(subject.key)) {
      // Where the account goes back to if nobody signs in: nothing is under way by then.
      const before: ReturnState =
        state.name === 'authorized-unsaved'
          ? { name: 'empty' }
          : state.name === 'refreshing'
            ? { name: 'active' }
            : state;
      slot.state = { name: 'pending', before };
    }
    return view;
  }

  /** A sign-in completed: its tokens are saved under the waiting login's password, or kept for one. */
  private async saveCompleted({
    subject,
    tokens,
    password,
  }: CompletedAuthorization): Promise<void> {
    const slot = this.slots.get(subject.key);
    // Started before anything else: from here on, a login waits for the save (see saveNew).
    const saving =
      password && this.saveNew(subject, tokens, () => this.options.vault.newKey(password));
    slot.state = saving ? { name: 'active' } : { name: 'authorized-unsaved', tokens };
    this.options.log.info({ event: 'token_obtained', account: subject.key }, 'account authorised');
    this.emit('event', { type: 'token_obtained', account: subject.key });
    await saving;
  }

  /**
   * `client_credentials`: a new access token whenever the old one expires. Under
   * `use_login_password_as_client_credentials_secret` the login's password is the secret, and
   * only logins with the same password share a request: the provider judges each.
   */
  private appOnly(
    subject: TokenSubject,
    keyFor: () => Promise<AccountKey>,
    passphrase: Passphrase | undefined,
  ): Promise<string> {
    const secretIsPassword = appSecretIsLoginPassword(
      subject.account,
      this.loginPasswordIsAppSecret(),
    );
    if (secretIsPassword && !passphrase) {
      return Promise.reject(
        new LoginFailure(
          'authorisation-needed',
          `${subject.loginName} gets app-only tokens with the login's password as the client secret; the next login gets them`,
        ),
      );
    }
    const appSecret = secretIsPassword ? passphrase : undefined;
    return this.obtain(subject, appSecret?.tag() ?? '', keyFor, (options) =>
      requestAppOnly(subject, options, appSecret),
    );
  }

  /**
   * `password`: the login's password goes to the provider. Logins share a grant only when their
   * passwords match. `known` is the account's key when this password opened the stored tokens.
   */
  private passwordGrant(
    subject: TokenSubject,
    passphrase: Passphrase,
    known?: AccountKey,
  ): Promise<string> {
    return this.obtain(
      subject,
      passphrase.tag(),
      async () => known ?? (await this.options.vault.newKey(passphrase)),
      async (options) => {
        const tokens = await requestPasswordGrant(subject, passphrase, options, this.options.log);
        this.options.log.info(
          { event: 'token_obtained', account: subject.key, flow: 'password' },
          'tokens obtained with the password grant',
        );
        this.emit('event', { type: 'token_obtained', account: subject.key });
        return tokens;
      },
      'ok (password grant)',
      'password grant failed',
    );
  }

  /**
   * One grant per account (and `tag`) at a time, shared by every login that needs it. The key is
   * derived while the request runs, so logins that arrive during the derivation join too; the
   * tokens are saved under it.
   */
  private obtain(
    subject: TokenSubject,
    tag: string,
    keyFor: () => Promise<AccountKey>,
    request: (options: () => Promise<ProviderClientOptions>) => Promise<TokenSet>,
    succeeded = 'ok',
    failed = 'failed',
  ): Promise<string> {
    return this.grants.run(
      subject.key,
      async () => {
        const key = keyFor();
        // Awaited only after a successful request; a failed one leaves the derivation unheard.
        key.catch(() => undefined);
        let tokens: TokenSet;
        try {
          tokens = await request(() => this.oauthFor(subject));
        } catch (err) {
          if (!(err instanceof GrantFailure)) throw err;
          settle(
            this.slots.get(subject.key),
            `${failed} (${err.failure.code}): ${err.failure.kind}`,
            err.failure,
          );
          throw err.login;
        }
        settle(this.slots.get(subject.key), succeeded);
        await this.saveNew(subject, tokens, () => key);
        return tokens.accessToken;
      },
      tag,
    );
  }

  // ── Saving ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Saves tokens a grant or sign-in produced under the key `keyFor` derives (about 0.4 s), and
   * makes the key known for background refreshes. Logins arriving meanwhile wait for it (see
   * {@link TokenManager.accessToken}) instead of finding the store empty and starting a sign-in.
   */
  private saveNew(
    subject: TokenSubject,
    tokens: TokenSet,
    keyFor: () => Promise<AccountKey>,
  ): Promise<void> {
    // A tag of its own per save: two saves in a row both land, in order, and are never merged.
    return this.saves.run(
      subject.key,
      async () => {
        await this.stored.save(subject, tokens, await keyFor());
        this.emit('known', subject);
      },
      String((this.saveCount += 1)),
    );
  }

  // ── Everything else ─────────────────────────────────────────────────────────────────────────

  /**
   * Another process or instance changed the account's stored fields: what was known of them here
   * is dropped, and when they now hold tokens, a login waiting for an authorisation here gets them
   * if its password opens them (that is how `authorize` on one instance completes a login waiting
   * on another); the other waiting logins are told to log in again.
   */
  private changedElsewhere(account: string): void {
    const slot = this.slots.get(account);
    this.stored.forget(account);
    slot.distrusted = false;
    const subject = this.pending.subject(account);
    if (!subject) return;
    void this.readFields(subject).then(
      (fields) => {
        if (!hasTokens(fields)) return;
        slot.contested = false;
        this.pending.settledElsewhere(account, async (passphrase) => {
          const opened = await this.options.vault.open(fields, passphrase);
          return opened.outcome === 'opened' && opened.key
            ? this.accessToken(subject, passphrase)
            : undefined;
        });
      },
      () => undefined,
    );
  }

  /** The provider-client options of one request for the account, with its decrypted client secret. */
  private async oauthFor(subject: TokenSubject): Promise<ProviderClientOptions> {
    const base = this.options.oauth;
    if (subject.account.clientSecret) return base;
    const { clientSecret } = this.slots.get(subject.key);
    if (typeof clientSecret === 'string') return { ...base, clientSecret };
    if (clientSecret === null) return base;
    // An unreadable store is reported by whoever reads it next; here it only means "not known to be encrypted".
    const fields = await this.readFields(subject).catch(() => undefined);
    if (encryptedClientSecret(subject.account, fields) !== undefined)
      throw clientSecretLocked(subject.key);
    return base;
  }

  private loginPasswordIsAppSecret(): boolean {
    return this.options.loginPasswordIsAppSecret?.() ?? false;
  }

  private isFresh(tokens: PlainTokens): boolean {
    return (
      tokens.accessTokenExpiry !== undefined &&
      tokens.accessTokenExpiry - this.options.refreshMarginSeconds > Date.now() / 1000
    );
  }
}

/**
 * What a request needs when the secret is stored encrypted and no login has decrypted it yet:
 * only the mail password can, and nothing else holds it.
 */
function clientSecretLocked(key: string): OAuthError {
  return new OAuthError(
    `The client secret of ${key} is stored encrypted (client_secret_encrypted) and no login has decrypted it yet`,
    {
      kind: 'config',
      code: 'client_secret_locked',
      hint: 'Log in once with the mail client so the proxy can decrypt it, or put the secret in client_secret.',
      configKey: 'client_secret',
    },
  );
}

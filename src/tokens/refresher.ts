/**
 * Refreshing an account's tokens: one refresh per account at a time in this process (shared by
 * every login that needs it) and, under the store's account lock, one across every process and
 * instance sharing the store. The refresh token a provider rotates is written the moment the new
 * one arrives; a dead one is dropped with its access token, and each caller goes on without it.
 */
import type { Logger } from 'pino';
import { loginFailureFromOAuth } from '../auth/oauth-login-failure.js';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import {
  classifyOAuthFailure,
  refresh,
  type OAuthError,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import { moveTo, settle, type AccountSlots } from './account-slots.js';
import type { AccountStore } from './account-store.js';
import { SingleFlight } from './single-flight.js';
import type { AccountChange } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';
import type { TokenEvent } from './token-manager.js';
import { withoutTokens, type AccountKey, type PlainTokens, type Vault } from './vault/vault.js';

export interface RefresherOptions {
  readonly slots: AccountSlots;
  readonly stored: AccountStore;
  readonly vault: Vault;
  readonly log: Logger;
  /** Whether an access token is still good for a login (expiry beyond the refresh margin). */
  readonly isFresh: (tokens: PlainTokens) => boolean;
  /** The provider-client options of one request for the account, its client secret included. */
  readonly oauthFor: (subject: TokenSubject) => Promise<ProviderClientOptions>;
  readonly emit: (event: TokenEvent) => void;
}

/** The tokens a refresh starts from: what the caller opened. */
export type RefreshFrom = PlainTokens & { readonly refreshToken: string };

/** How a shared refresh ended, for each login that waited on it. */
export type RefreshEnd =
  | { readonly kind: 'token'; readonly accessToken: string }
  /** The refresh token is dead and gone: each caller goes on without it. */
  | { readonly kind: 'dead' };

export class Refresher {
  private readonly flights = new SingleFlight<RefreshEnd>();
  private readonly slots: AccountSlots;
  private readonly stored: AccountStore;
  private readonly vault: Vault;
  private readonly log: Logger;

  constructor(private readonly options: RefresherOptions) {
    ({ slots: this.slots, stored: this.stored, vault: this.vault, log: this.log } = options);
  }

  /**
   * Refreshes the account's tokens, or joins the refresh already under way for it.
   *
   * @throws LoginFailure when the provider or the store failed; the stored tokens are kept.
   */
  run(subject: TokenSubject, key: AccountKey, seen: RefreshFrom): Promise<RefreshEnd> {
    return this.flights.run(subject.key, async () => {
      try {
        return await this.locked(subject, key, seen);
      } catch (err) {
        if (err instanceof LoginFailure) throw err;
        // The store failed under the lock: whatever it holds is as it was.
        throw new LoginFailure(
          'temporary',
          `Cannot refresh the OAuth2 token for ${subject.key}: the token store failed (${(err as Error).message}). The stored tokens are kept; try again later`,
        );
      } finally {
        // The refresh is over whichever way it ended; a store failure leaves the tokens as they were.
        const slot = this.slots.get(subject.key);
        if (slot.state.name === 'refreshing')
          moveTo(slot, { name: 'failed', kind: 'transient', code: 'token_store' });
      }
    });
  }

  /**
   * One refresh per account across every process and instance sharing the store: under the
   * account's lock the stored tokens are read again, and when someone else has refreshed (or
   * authorised) meanwhile, theirs are used; otherwise the refresh runs and its tokens are written
   * before the lock is released, first thing after they arrive: a provider that rotates refresh
   * tokens has already voided the old one.
   */
  private async locked(
    subject: TokenSubject,
    key: AccountKey,
    seen: RefreshFrom,
  ): Promise<RefreshEnd> {
    const slot = this.slots.get(subject.key);
    moveTo(slot, { name: 'refreshing' });
    let used = seen.refreshToken;
    let decided = false;
    let sealed: StoredTokenFields | undefined;
    let outcome: RefreshOutcome;
    try {
      outcome = await this.stored.update<RefreshOutcome>(subject, async (newest, inStore) => {
        decided = true;
        const theirs = newest && this.vault.reopen(key, newest);
        // Someone wrote other tokens than the ones this refresh started from (a provider that
        // keeps refresh tokens changes only the access token): fresh ones are used as they are.
        const written =
          theirs !== undefined &&
          (theirs.refreshToken !== seen.refreshToken || theirs.accessToken !== seen.accessToken);
        if (written && theirs.accessToken && this.options.isFresh(theirs) && !slot.distrusted)
          return { change: { kind: 'keep' }, result: { kind: 'theirs', tokens: theirs } };
        if (theirs?.refreshToken) used = theirs.refreshToken;
        const result = await this.request(subject, used);
        if (result.kind === 'dead') {
          // The dead tokens go; the salt and an encrypted client secret stay for the next ones.
          const change: AccountChange =
            inStore === undefined
              ? { kind: 'keep' }
              : { kind: 'write', fields: withoutTokens(inStore) };
          return { change, result };
        }
        sealed = this.stored.seal(subject, result.tokens, key);
        return { change: { kind: 'write', fields: sealed }, result };
      });
    } catch (err) {
      if (err instanceof LoginFailure) throw err;
      if (sealed) {
        // The provider answered and the store refused the tokens: they stay in memory.
        this.stored.refused(subject.key, err);
        return this.refreshed(subject, this.vault.reopen(key, sealed)?.accessToken ?? '');
      }
      if (decided) throw err;
      // No lock could be taken (a read-only directory): refresh without it, as a lone process would.
      this.log.warn(
        { event: 'token_store_unlockable', account: subject.key, err: (err as Error).message },
        'cannot lock the token store; refreshing without the lock',
      );
      const result = await this.request(subject, used);
      if (result.kind === 'dead') return this.dead(subject, result.failure);
      await this.stored.save(subject, result.tokens, key);
      return this.refreshed(subject, result.tokens.accessToken);
    }
    switch (outcome.kind) {
      case 'theirs':
        moveTo(slot, { name: 'active' });
        return { kind: 'token', accessToken: outcome.tokens.accessToken ?? '' };
      case 'dead':
        return this.dead(subject, outcome.failure);
      case 'refreshed':
        return this.refreshed(subject, outcome.tokens.accessToken);
    }
  }

  /** Asks the provider; a dead refresh token is an outcome, other failures are thrown as login failures. */
  private async request(
    subject: TokenSubject,
    refreshToken: string,
  ): Promise<Exclude<RefreshOutcome, { kind: 'theirs' }>> {
    const started = Date.now();
    try {
      const tokens = await refresh(
        subject.account,
        refreshToken,
        await this.options.oauthFor(subject),
      );
      settle(this.slots.get(subject.key), 'ok');
      // Logged as it arrives; the write follows at once (a log line costs no measurable time).
      this.log.info(
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
      settle(
        this.slots.get(subject.key),
        failure.kind === 'transient'
          ? `failed (${failure.code}); tokens kept`
          : `failed (${failure.code}): ${failure.kind}`,
        failure,
      );
      this.log.warn(
        {
          event: 'refresh_failed',
          account: subject.key,
          kind: failure.kind,
          code: failure.code,
          aadsts: failure.aadsts,
        },
        failure.message,
      );
      this.options.emit({
        type: 'refresh_failed',
        account: subject.key,
        kind: failure.kind,
        reason: `${failure.message}. ${hint}`,
      });
      if (failure.kind === 'reauthorise') return { kind: 'dead', failure };
      throw loginFailureFromOAuth(failure, {
        doing: (kind) =>
          kind === 'transient'
            ? `Cannot refresh the OAuth2 token for ${subject.key}`
            : `Account ${subject.key} cannot get tokens`,
        whenTransient: 'The stored tokens are kept; try again later',
        otherwise: 'config',
      });
    }
  }

  /** Tells of a refresh whose tokens are saved (or kept in memory). */
  private refreshed(subject: TokenSubject, accessToken: string): RefreshEnd {
    this.slots.get(subject.key).distrusted = false;
    this.options.emit({ type: 'token_refreshed', account: subject.key });
    return { kind: 'token', accessToken };
  }

  /**
   * The provider refused the refresh token, and (under the lock) nobody had stored a newer one:
   * the dead tokens are gone from the store and the account needs authorising.
   */
  private dead(subject: TokenSubject, failure: OAuthError): RefreshEnd {
    this.stored.forget(subject.key);
    if (subject.account.flow === 'password') {
      this.log.info(
        { event: 'refresh_token_dropped', account: subject.key, reason: failure.code },
        SIGN_IN_AGAIN_WITH_PASSWORD,
      );
    } else {
      this.log.warn(
        { event: 'authorisation_needed', account: subject.key, reason: failure.code },
        failure.hint,
      );
    }
    return { kind: 'dead' };
  }
}

const SIGN_IN_AGAIN_WITH_PASSWORD =
  'The refresh token was refused; the login under way (or else the next one) gets new tokens with the password grant.';

type RefreshOutcome =
  /** New tokens from the provider, stored (or kept in memory when the store refused them). */
  | { readonly kind: 'refreshed'; readonly tokens: TokenSet }
  /** Another process or instance had refreshed meanwhile; its fresh access token is used. */
  | { readonly kind: 'theirs'; readonly tokens: PlainTokens }
  /** The provider refused the refresh token and nobody had a newer one. */
  | { readonly kind: 'dead'; readonly failure: OAuthError };

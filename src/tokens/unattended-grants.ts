/**
 * The grants in which nobody signs in at the provider: the app's own (`client_credentials`), a
 * service account acting for the login (`service_account`), and the account's own password
 * (`password`). Each is one request per account at a time, shared by the logins that need it;
 * what it gets is saved through the token manager like any other tokens.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import {
  classifyOAuthFailure,
  clientCredentials,
  passwordGrant,
  serviceAccountToken,
  type OAuthError,
  type OAuthRequestContext,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import { SingleFlight } from './single-flight.js';
import type { TokenSubject } from './subject.js';
import type { AccountKey, AccountKeys } from './token-cipher.js';

/** What the grants need from the token manager. */
export interface GrantHost {
  readonly log: Logger;
  readonly keys: AccountKeys;
  /** Provider-client options for one request of the account (its decrypted client secret included). */
  oauthFor(subject: TokenSubject): Promise<ProviderClientOptions>;
  /** Encrypts and stores the tokens under `key`. */
  save(subject: TokenSubject, tokens: TokenSet, key: AccountKey): Promise<void>;
  /** How the account's last token request went, for `status`. */
  recordOutcome(subject: TokenSubject, outcome: string, kind?: OAuthError['kind']): void;
  /** Tokens came from a grant that a person would want to hear of (the notification hook). */
  announce(subject: TokenSubject): void;
  /** The account's key is known now: background refreshes may use it. */
  known(subject: TokenSubject, key: AccountKey): void;
  /** `use_login_password_as_client_credentials_secret`, read at each use. */
  loginPasswordIsAppSecret(): boolean;
}

export class UnattendedGrants {
  /** Requests under way, by account (and, where the password takes part, by password too). */
  private readonly flights = new SingleFlight<string>();
  /** Password grants under way, by account: logins share one only when their passwords match. */
  private readonly passwordFlights = new Map<
    string,
    { readonly password: string; readonly flight: Promise<string> }
  >();

  constructor(private readonly host: GrantHost) {}

  /**
   * `client_credentials`: the app authenticates as itself and there is no refresh token; a new
   * access token is simply requested when the old one expires. `password` is the login's, the
   * client secret itself under `use_login_password_as_client_credentials_secret`. The key is
   * derived inside the shared request, so logins that arrive during the derivation join it too.
   */
  appOnly(
    subject: TokenSubject,
    keyFor: () => Promise<AccountKey>,
    password: string | undefined,
  ): Promise<string> {
    const secretIsPassword = this.appSecretIsLoginPassword(subject);
    if (secretIsPassword && password === undefined) {
      return Promise.reject(
        new LoginFailure(
          'authorisation-needed',
          `${subject.loginName} gets app-only tokens with the login's password as the client secret; the next login gets them`,
        ),
      );
    }
    // When the password is the secret, only logins with the same password may share a request:
    // the provider must judge each password itself.
    const flightKey = secretIsPassword
      ? `${subject.key}\0${digest(password ?? '').toString('base64')}`
      : subject.key;
    return this.shared(
      subject,
      flightKey,
      keyFor,
      'client_credentials',
      (options) =>
        clientCredentials(
          subject.account,
          secretIsPassword ? { ...options, clientSecret: password } : options,
        ),
      (failure) => {
        if (secretIsPassword && failure.code === 'invalid_client') {
          return new LoginFailure(
            'bad-password',
            `The identity provider refused the password of ${subject.loginName} as the app's client secret (use_login_password_as_client_credentials_secret is on): ${failure.message}`,
          );
        }
        return new LoginFailure(
          failure.kind === 'transient' ? 'temporary' : 'config',
          `Cannot get an app-only token for ${subject.key}: ${failure.message}. ${failure.hint}`,
        );
      },
    );
  }

  /**
   * `service_account`: the service account's key signs an assertion naming the login as the user
   * it acts for (Google's domain-wide delegation); like app-only tokens, there is no refresh
   * token, and a new assertion is sent when the access token expires. A catch-all section keeps
   * each mailbox's token under its own key, so each is asked for (and shared) separately.
   */
  serviceAccount(subject: TokenSubject, keyFor: () => Promise<AccountKey>): Promise<string> {
    const { log } = this.host;
    return this.shared(
      subject,
      subject.key,
      keyFor,
      'service_account',
      async (options) => {
        const tokens = await serviceAccountToken(subject.account, subject.loginName, options);
        log.info(
          { event: 'token_obtained', account: subject.key, flow: 'service_account' },
          'access token obtained with the service account key',
        );
        this.host.announce(subject);
        return tokens;
      },
      (failure) => {
        log.warn(
          {
            event: 'service_account_token_failed',
            account: subject.key,
            kind: failure.kind,
            code: failure.code,
          },
          `${failure.message}. ${failure.hint}`,
        );
        return new LoginFailure(
          failure.kind === 'transient' ? 'temporary' : 'config',
          `Cannot get a token for ${subject.loginName} with the service account of [${subject.account.name}]: ${failure.message}. ${failure.hint}`,
        );
      },
    );
  }

  /**
   * `password`: the account's own password goes to the provider in a password grant. `known` is
   * the account's key when this password already unlocked the stored tokens.
   */
  async password(subject: TokenSubject, password: string, known?: AccountKey): Promise<string> {
    for (
      let current = this.passwordFlights.get(subject.key);
      current;
      current = this.passwordFlights.get(subject.key)
    ) {
      if (samePassword(current.password, password)) return current.flight;
      await current.flight.catch(() => undefined);
    }
    const flight = this.passwordOnce(subject, password, known).finally(() =>
      this.passwordFlights.delete(subject.key),
    );
    this.passwordFlights.set(subject.key, { password, flight });
    return flight;
  }

  private async passwordOnce(
    subject: TokenSubject,
    password: string,
    known: AccountKey | undefined,
  ): Promise<string> {
    const { log } = this.host;
    let tokens: TokenSet;
    try {
      tokens = await passwordGrant(
        subject.account,
        subject.loginName,
        password,
        await this.host.oauthFor(subject),
      );
    } catch (err) {
      const failure = classifyOAuthFailure(err, 'password');
      this.host.recordOutcome(
        subject,
        `password grant failed (${failure.code}): ${failure.kind}`,
        failure.kind,
      );
      log.warn(
        {
          event: 'password_grant_failed',
          account: subject.key,
          kind: failure.kind,
          code: failure.code,
          aadsts: failure.aadsts,
        },
        failure.message,
      );
      throw passwordGrantFailure(subject, failure);
    }
    this.host.recordOutcome(subject, 'ok (password grant)');
    log.info(
      { event: 'token_obtained', account: subject.key, flow: 'password' },
      'tokens obtained with the password grant',
    );
    this.host.announce(subject);
    const key = known ?? (await this.host.keys.create(password));
    await this.host.save(subject, tokens, key);
    this.host.known(subject, key);
    return tokens.accessToken;
  }

  /**
   * One token request per `flightKey` at a time, shared by every login that needs it, for the
   * flows that ask for a new access token instead of refreshing. The tokens are saved under the
   * key `keyFor` gives the login that started the request (derived while the request runs).
   */
  private shared(
    subject: TokenSubject,
    flightKey: string,
    keyFor: () => Promise<AccountKey>,
    context: OAuthRequestContext,
    request: (options: ProviderClientOptions) => Promise<TokenSet>,
    refusal: (failure: OAuthError) => LoginFailure,
  ): Promise<string> {
    return this.flights.run(flightKey, async () => {
      const key = keyFor();
      // Awaited only after a successful request; a failed one leaves the derivation unheard.
      key.catch(() => undefined);
      let tokens: TokenSet;
      try {
        tokens = await request(await this.host.oauthFor(subject));
      } catch (err) {
        const failure = classifyOAuthFailure(err, context);
        this.host.recordOutcome(subject, `failed (${failure.code}): ${failure.kind}`, failure.kind);
        throw refusal(failure);
      }
      this.host.recordOutcome(subject, 'ok');
      await this.host.save(subject, tokens, await key);
      return tokens.accessToken;
    });
  }

  /**
   * Whether a new token for the account needs the identity provider to accept what the login
   * sent: true for the sign-in flows and the password grant; for app-only and service accounts
   * only when the login's password is the app's client secret. Otherwise any password would do.
   */
  providerJudgesPassword(subject: TokenSubject): boolean {
    const { flow } = subject.account;
    if (flow === 'service_account') return false;
    if (flow === 'client_credentials') return this.appSecretIsLoginPassword(subject);
    return true;
  }

  /** Whether a client_credentials account sends the login's password as its client secret. */
  private appSecretIsLoginPassword(subject: TokenSubject): boolean {
    const { account } = subject;
    return (
      this.host.loginPasswordIsAppSecret() &&
      !account.clientSecret &&
      account.clientSecretEncrypted === undefined
    );
  }
}

/** What a login is told when the password grant fails; the stored tokens are never touched. */
function passwordGrantFailure(subject: TokenSubject, failure: OAuthError): LoginFailure {
  switch (failure.kind) {
    case 'credentials':
      return new LoginFailure(
        'bad-password',
        `The identity provider refused the password for ${subject.loginName}: ${sentence(failure.description ?? failure.code)} ${failure.hint}`,
      );
    case 'transient':
      return new LoginFailure(
        'temporary',
        `Cannot get an OAuth2 token for ${subject.key}: ${failure.message}. Try again later`,
      );
    default:
      return new LoginFailure(
        'config',
        `Account ${subject.key} cannot get tokens with oauth2_flow = password: ${failure.message}. ${failure.hint}`,
      );
  }
}

/** Ends the provider's words with a full stop, unless they already end a sentence. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compares without leaking how much of the password matched. */
function samePassword(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

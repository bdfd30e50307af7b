/**
 * The grants in which nobody signs in at the provider: the app's own (`client_credentials`), a
 * service account acting for the login (`service_account`), and the account's own password
 * (`password`). Each is one request that returns a token set or throws a login failure worded for
 * the mail client; the token manager shares, saves and announces what they get.
 */
import type { Logger } from 'pino';
import { loginFailureFromOAuth } from '../auth/oauth-login-failure.js';
import { LoginFailure } from '../auth/types.js';
import type { AccountConfig } from '../config/types.js';
import {
  classifyOAuthFailure,
  clientCredentials,
  OAuthError,
  passwordGrant,
  serviceAccountToken,
  type OAuthRequestContext,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import type { TokenSubject } from './subject.js';
import { textOf, type Passphrase } from './vault/passphrase.js';

/** A grant's failure: the provider's verdict (for the account's state) and what the login is told. */
export class GrantFailure extends Error {
  override readonly name = 'GrantFailure';

  constructor(
    readonly failure: OAuthError,
    readonly login: LoginFailure,
  ) {
    super(login.message);
  }
}

/**
 * `client_credentials`: the app authenticates as itself and there is no refresh token; a new
 * access token is simply requested when the old one expires. `appSecret` is the login's password
 * under `use_login_password_as_client_credentials_secret`.
 *
 * @throws {@link GrantFailure}
 */
export function requestAppOnly(
  subject: TokenSubject,
  options: () => Promise<ProviderClientOptions>,
  appSecret: Passphrase | undefined,
): Promise<TokenSet> {
  return attempt(
    'client_credentials',
    async () => {
      const base = await options();
      return clientCredentials(
        subject.account,
        appSecret ? { ...base, clientSecret: textOf(appSecret) } : base,
      );
    },
    (failure) =>
      appSecret && failure.code === 'invalid_client'
        ? // The provider refused the secret, which is this login's password: a wrong password.
          loginFailureFromOAuth(asRefusedPassword(failure), {
            doing: `The identity provider refused the password of ${subject.loginName} as the app's client secret (use_login_password_as_client_credentials_secret is on)`,
          })
        : loginFailureFromOAuth(failure, {
            doing: `Cannot get an app-only token for ${subject.key}`,
            otherwise: 'config',
          }),
  );
}

/**
 * `service_account`: the service account's key signs an assertion naming the login as the user
 * it acts for (Google's domain-wide delegation); like app-only tokens, there is no refresh
 * token, and a new assertion is sent when the access token expires.
 *
 * @throws {@link GrantFailure}
 */
export function requestServiceAccount(
  subject: TokenSubject,
  options: () => Promise<ProviderClientOptions>,
  log: Logger,
): Promise<TokenSet> {
  return attempt(
    'service_account',
    async () => serviceAccountToken(subject.account, subject.loginName, await options()),
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
      return loginFailureFromOAuth(failure, {
        doing: `Cannot get a token for ${subject.loginName} with the service account of [${subject.account.name}]`,
        otherwise: 'config',
      });
    },
  );
}

/**
 * `password`: the account's own password goes to the provider in a password grant. A refusal
 * never touches the stored tokens.
 *
 * @throws {@link GrantFailure}
 */
export function requestPasswordGrant(
  subject: TokenSubject,
  password: Passphrase,
  options: () => Promise<ProviderClientOptions>,
  log: Logger,
): Promise<TokenSet> {
  return attempt(
    'password',
    async () =>
      passwordGrant(subject.account, subject.loginName, textOf(password), await options()),
    (failure) => {
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
      return loginFailureFromOAuth(failure, {
        doing: (kind) =>
          kind === 'credentials'
            ? `The identity provider refused the password for ${subject.loginName}`
            : kind === 'transient'
              ? `Cannot get an OAuth2 token for ${subject.key}`
              : `Account ${subject.key} cannot get tokens with oauth2_flow = password`,
        whenTransient: 'Try again later',
        otherwise: failure.kind === 'credentials' ? 'bad-password' : 'config',
      });
    },
  );
}

/**
 * Whether a new token for the account needs the identity provider to accept what the login
 * sent: true for the sign-in flows and the password grant; for app-only and service accounts
 * only when the login's password is the app's client secret. Otherwise any password would do.
 */
export function providerJudgesPassword(
  subject: TokenSubject,
  loginPasswordIsAppSecret: boolean,
): boolean {
  const { flow } = subject.account;
  if (flow === 'service_account') return false;
  if (flow === 'client_credentials')
    return appSecretIsLoginPassword(subject.account, loginPasswordIsAppSecret);
  return true;
}

/** Whether a client_credentials account sends the login's password as its client secret. */
export function appSecretIsLoginPassword(account: AccountConfig, optionOn: boolean): boolean {
  return optionOn && !account.clientSecret && account.clientSecretEncrypted === undefined;
}

/** `invalid_client` for a secret that is the login's password, as the password refusal it is. */
function asRefusedPassword(failure: OAuthError): OAuthError {
  return new OAuthError(failure.message, {
    kind: 'credentials',
    code: failure.code,
    hint: 'Log in with the password the app registration accepts as its client secret.',
    description: failure.message,
  });
}

/**
 * Runs one grant request, `options` (the account's provider-client options) included: a secret
 * that cannot be sent yet fails the grant like any provider refusal.
 */
async function attempt(
  context: OAuthRequestContext,
  request: () => Promise<TokenSet>,
  refusal: (failure: OAuthError) => LoginFailure,
): Promise<TokenSet> {
  try {
    return await request();
  } catch (err) {
    const failure = classifyOAuthFailure(err, context);
    throw new GrantFailure(failure, refusal(failure));
  }
}

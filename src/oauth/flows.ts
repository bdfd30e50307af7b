/**
 * What each `oauth2_flow` asks of the user. Only the authorization code and device flows have a
 * person sign in at the provider, so only they can have a pending authorisation for `authorize`
 * to complete; the others get their tokens at a login (or, for service accounts, not at all yet).
 */
import type { AccountConfig, OAuthFlow } from '../config/types.js';
import { OAuthError } from './errors.js';

/** The flows in which someone signs in at the provider's page. */
export type SignInFlow = Extract<OAuthFlow, 'authorization_code' | 'device'>;

export function isSignInFlow(flow: OAuthFlow): flow is SignInFlow {
  return flow === 'authorization_code' || flow === 'device';
}

/** What to use instead of the service_account flow, which is not implemented. */
const INSTEAD_OF_SERVICE_ACCOUNT =
  'Use oauth2_flow = authorization_code instead (for Gmail with your own "Desktop app" client_id and client_secret), or device with providers that allow it';

/**
 * The service_account flow (Google) is accepted in the config for email-oauth2-proxy
 * compatibility but not implemented. `key` names the account (the section, or a catch-all's login).
 */
export function serviceAccountUnsupported(key: string): OAuthError {
  return new OAuthError(`${key} uses oauth2_flow = service_account, which oauth2-mail-proxy does not support (yet)`, {
    kind: 'config',
    code: 'unsupported_flow',
    hint: INSTEAD_OF_SERVICE_ACCOUNT,
    configKey: 'oauth2_flow',
  });
}

/**
 * Why there is nothing to authorise for this account, as a `config` error naming `oauth2_flow`;
 * undefined for the sign-in flows. `key` names the account as the user typed it.
 */
export function noSignInFor(account: AccountConfig, key = account.name): OAuthError | undefined {
  const details = (message: string, hint: string): OAuthError =>
    new OAuthError(message, { kind: 'config', code: 'no_sign_in', hint, configKey: 'oauth2_flow' });
  switch (account.flow) {
    case 'authorization_code':
    case 'device':
      return undefined;
    case 'client_credentials':
      return details(
        `${key} uses oauth2_flow = client_credentials: the proxy gets its tokens by itself, nobody signs in`,
        'Nothing to do: logins get app-only tokens as they need them',
      );
    case 'password':
      return details(
        `${key} uses oauth2_flow = password, which needs no authorisation: the mail client's first login gets the tokens with the account's own password`,
        'Log in with the mail client; if the identity provider wants more than a password, use oauth2_flow = authorization_code or device',
      );
    case 'service_account':
      return serviceAccountUnsupported(key);
  }
}

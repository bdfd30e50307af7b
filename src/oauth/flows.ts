/**
 * What each `oauth2_flow` asks of the user. Only the authorization code and device flows have a
 * person sign in at the provider, so only they can have a pending authorisation for `authorize`
 * to complete; the others get their tokens at a login.
 */
import type { AccountConfig, OAuthFlow } from '../config/types.js';
import { OAuthError } from './errors.js';

/** The flows in which someone signs in at the provider's page. */
export type SignInFlow = Extract<OAuthFlow, 'authorization_code' | 'device'>;

export function isSignInFlow(flow: OAuthFlow): flow is SignInFlow {
  return flow === 'authorization_code' || flow === 'device';
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
      return details(
        `${key} uses oauth2_flow = service_account: the proxy gets its tokens by itself with the service account's key, nobody signs in`,
        'Nothing to do: logins get tokens as they need them, once a Google Workspace administrator has granted the service account domain-wide delegation',
      );
  }
}

/**
 * The resource owner password credentials grant (`oauth2_flow = password`): the mail client's
 * password is the account's own, and the proxy trades it at the token endpoint for tokens. Office
 * 365 work accounts without multi-factor authentication accept it; Google and personal Microsoft
 * accounts do not.
 */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { withOAuthErrors } from './errors.js';
import { createProviderClient, type ProviderClientOptions } from './provider-client.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/**
 * Signs `username` in with `password` and the account's scope, as written. With `offline_access`
 * in the scope the provider adds a refresh token, which is then used like any other.
 *
 * @throws OAuthError: `credentials` when the provider refused the user name or password
 *   (AADSTS50126 and the like), `config` when the sign-in needs more than a password (multi-factor
 *   authentication, consent) or the client may not use this grant, `transient` when the provider
 *   could not answer. Neither the password nor the tokens appear in it.
 */
export async function passwordGrant(
  account: AccountConfig,
  username: string,
  password: string,
  options: ProviderClientOptions = {},
): Promise<TokenSet> {
  const config = createProviderClient(account, options);
  const requestedAt = Date.now();
  const response = await withOAuthErrors('password', () =>
    client.genericGrantRequest(config, 'password', { username, password, scope: account.scope }),
  );
  return toTokenSet(response, requestedAt);
}

/** The client credentials grant (`oauth2_flow = client_credentials`): app-only tokens, no user. */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { withOAuthErrors } from './errors.js';
import { createProviderClient, type ProviderClientOptions } from './provider-client.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/**
 * Gets an app-only access token with the account's scope as written (for Office 365 that is
 * `https://outlook.office365.com/.default`). There is no refresh token: ask again when it expires.
 */
export async function clientCredentials(
  account: AccountConfig,
  options: ProviderClientOptions = {},
): Promise<TokenSet> {
  const config = createProviderClient(account, options);
  const requestedAt = Date.now();
  const response = await withOAuthErrors('client_credentials', () =>
    client.clientCredentialsGrant(config, { scope: account.scope }),
  );
  return toTokenSet(response, requestedAt);
}

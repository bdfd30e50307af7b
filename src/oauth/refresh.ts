/** The refresh token grant: a new access token (and, with Microsoft, a new refresh token). */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { OAuthError, withOAuthErrors } from './errors.js';
import { createProviderClient, type ProviderClientOptions } from './provider-client.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/**
 * Exchanges a refresh token. No `scope` is sent, so the provider keeps the scopes of the original
 * grant (as email-oauth2-proxy does).
 *
 * The result's `refreshToken` is the one to store from now on: Microsoft rotates it on every use
 * and the old one eventually stops working. When the provider sends none (Google), the one passed
 * in is returned with `refreshTokenKept: true`.
 *
 * @throws OAuthError; `reauthorise` means the refresh token is dead (AADSTS70008, 700082, ...).
 */
export async function refresh(
  account: AccountConfig,
  refreshToken: string,
  options: ProviderClientOptions = {},
): Promise<TokenSet> {
  if (!refreshToken) {
    throw new OAuthError('There is no refresh token to use', {
      kind: 'reauthorise',
      code: 'no_refresh_token',
      hint: 'Authorise the account again.',
    });
  }
  const config = createProviderClient(account, options);
  const requestedAt = Date.now();
  const response = await withOAuthErrors('refresh', () =>
    client.refreshTokenGrant(config, refreshToken),
  );
  const tokens = toTokenSet(response, requestedAt);
  return tokens.refreshToken !== undefined
    ? { ...tokens, refreshTokenKept: false }
    : { ...tokens, refreshToken, refreshTokenKept: true };
}

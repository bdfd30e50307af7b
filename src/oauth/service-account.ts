/**
 * Google Workspace service accounts with domain-wide delegation (`oauth2_flow = service_account`):
 * the service account signs an assertion naming the user it acts as, and trades it at its key's
 * `token_uri` for an access token to that user's mailbox. Nobody signs in and there is no refresh
 * token: a new assertion is sent whenever the access token expires.
 */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { OAuthError, withOAuthErrors } from './errors.js';
import { tokenEndpointClient, type ProviderClientOptions } from './provider-client.js';
import { serviceAccountAssertion } from './service-account-assertion.js';
import { readServiceAccountKey, type ServiceAccountKey } from './service-account-key.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/** RFC 7523's grant type. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * The assertion is the only credential: like google-auth (which email-oauth2-proxy uses), the
 * request carries `grant_type` and `assertion` and nothing else, no `client_id`.
 */
const assertionOnly: client.ClientAuth = () => undefined;

/**
 * Gets an access token to `user`'s mailbox with the account's service account key and scope.
 * `options.clientSecret` stands in for `client_secret` (a decrypted `client_secret_encrypted`).
 *
 * @throws OAuthError: `config` when the key is missing or unusable, or Google refuses it
 *   (domain-wide delegation not granted, a deleted key, a user outside the domain); `transient`
 *   when the token endpoint cannot answer. Neither the key nor the token appears in it.
 */
export async function serviceAccountToken(
  account: AccountConfig,
  user: string,
  options: ProviderClientOptions = {},
): Promise<TokenSet> {
  const key = await readServiceAccountKey(account, options.clientSecret ?? account.clientSecret);
  const config = tokenEndpointClient(key.tokenUri, key.clientEmail, assertionOnly, options);
  const requestedAt = Date.now();
  const assertion = serviceAccountAssertion(key, {
    scope: account.scope,
    subject: user,
    issuedAt: Math.floor(requestedAt / 1000),
  });
  let tokens: TokenSet;
  try {
    tokens = toTokenSet(
      await withOAuthErrors('service_account', () =>
        client.genericGrantRequest(config, JWT_BEARER_GRANT, { assertion }),
      ),
      requestedAt,
    );
  } catch (err) {
    throw err instanceof OAuthError ? blameTheKey(err, key) : err;
  }
  // Nothing could use a refresh token: the next token comes from a new assertion.
  return { accessToken: tokens.accessToken, expiresAt: tokens.expiresAt };
}

/** The key file names the endpoint, so what the generic advice blames on token_url is the key's. */
function blameTheKey(err: OAuthError, key: ServiceAccountKey): OAuthError {
  if (err.configKey !== 'token_url') return err;
  return new OAuthError(err.message, {
    kind: err.kind,
    code: err.code,
    hint: `There is no OAuth token endpoint at ${key.tokenUri.href}, the token_uri of ${key.source}: use the JSON key as Google issued it.`,
    configKey: 'client_secret',
    ...(err.status !== undefined && { status: err.status }),
    ...(err.description !== undefined && { description: err.description }),
  });
}

/**
 * Builds the openid-client `Configuration` for one account from its config section alone: no
 * discovery request, because email-oauth2-proxy configs name the endpoints directly and Microsoft's
 * `common` discovery document describes a per-tenant issuer we could not match anyway.
 */
import * as client from 'openid-client';
import { isLoopbackHost } from '../config/loopback.js';
import type { AccountConfig } from '../config/types.js';
import { certificateCredentialsAuth } from './certificate-credentials.js';
import { OAuthError, type ConfigKey } from './errors.js';
import { providerFetch } from './provider-fetch.js';

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

export interface ProviderClientOptions {
  /** Timeout of each HTTP request to the provider, in milliseconds. Default 15 s. */
  readonly requestTimeoutMs?: number;
  /**
   * The client secret to use instead of `account.clientSecret`: a decrypted
   * `client_secret_encrypted`, or the login password under
   * `use_login_password_as_client_credentials_secret`.
   */
  readonly clientSecret?: string | undefined;
}

/**
 * The account's openid-client configuration. Clients with a secret use `client_secret_post`,
 * which Microsoft and Google both accept and email-oauth2-proxy uses; without a secret, clients
 * with certificate credentials (`jwt_certificate_path` / `jwt_key_path`) send a signed assertion
 * (`private_key_jwt`, see certificate-credentials.ts), and public clients only their client_id
 * (`None`). A secret wins over certificate credentials, as in email-oauth2-proxy. Plain http is
 * allowed only for loopback hosts.
 *
 * @throws OAuthError of kind `config` when an endpoint address or the client_id is unusable.
 */
export function createProviderClient(
  account: AccountConfig,
  options: ProviderClientOptions = {},
): client.Configuration {
  if (!account.clientId) {
    throw configError('client_id', 'client_id is missing', 'Set client_id in the account section.');
  }
  // Only the flows where someone signs in use permission_url; the others need not set it (the
  // loader does not ask them to), and an unused one copied from another section must not matter.
  const signsIn = account.flow === 'authorization_code' || account.flow === 'device';
  const authorizationEndpoint = signsIn
    ? endpointUrl(account.permissionUrl, 'permission_url')
    : undefined;
  const tokenEndpoint = endpointUrl(account.tokenUrl, 'token_url');
  const deviceEndpoint = signsIn ? deviceAuthorizationEndpoint(account) : undefined;
  const endpoints = [
    tokenEndpoint,
    ...(authorizationEndpoint ? [authorizationEndpoint] : []),
    ...(deviceEndpoint ? [new URL(deviceEndpoint)] : []),
  ];

  const server: client.ServerMetadata = {
    // openid-client's default audience of client assertions; ours set their own (token_url).
    issuer: tokenEndpoint.origin,
    ...(authorizationEndpoint !== undefined && {
      authorization_endpoint: authorizationEndpoint.href,
    }),
    token_endpoint: tokenEndpoint.href,
    ...(deviceEndpoint !== undefined && { device_authorization_endpoint: deviceEndpoint }),
  };
  const secret = options.clientSecret ?? account.clientSecret;
  const auth = secret
    ? client.ClientSecretPost(secret)
    : account.certificateCredentials
      ? certificateCredentialsAuth(account.certificateCredentials, account.tokenUrl)
      : client.None();
  return configuration(server, account.clientId, auth, endpoints, options);
}

/**
 * A configuration for a token endpoint that does not come from an account section: a Google
 * service account's key names its own (`token_uri`), and the signed assertion in the request is
 * all the authentication there is. `tokenEndpoint` must already have passed
 * {@link isAllowedEndpoint}; `clientId` only labels the configuration, `auth` decides what is sent.
 */
export function tokenEndpointClient(
  tokenEndpoint: URL,
  clientId: string,
  auth: client.ClientAuth,
  options: Pick<ProviderClientOptions, 'requestTimeoutMs'> = {},
): client.Configuration {
  const server: client.ServerMetadata = {
    issuer: tokenEndpoint.origin,
    token_endpoint: tokenEndpoint.href,
  };
  return configuration(server, clientId, auth, [tokenEndpoint], options);
}

/** Whether requests may go to `url`: https, or plain http to a loopback host (a local test provider). */
export function isAllowedEndpoint(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

function configuration(
  server: client.ServerMetadata,
  clientId: string,
  auth: client.ClientAuth,
  endpoints: readonly URL[],
  options: Pick<ProviderClientOptions, 'requestTimeoutMs'>,
): client.Configuration {
  const config = new client.Configuration(server, clientId, undefined, auth);
  config[client.customFetch] = providerFetch(
    options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  );
  // providerFetch owns the timeout; openid-client's own takes whole seconds only.
  config.timeout = 0;
  if (endpoints.some((url) => url.protocol === 'http:')) client.allowInsecureRequests(config);
  return config;
}

/**
 * Where the device flow starts. email-oauth2-proxy configs for `oauth2_flow = device` put the
 * device endpoint in `permission_url` (`.../oauth2/v2.0/devicecode`); configs copied from an
 * authorization-code account still point it at `.../authorize`, and then Microsoft's device
 * endpoint is the token URL with its last segment `token` replaced by `devicecode`.
 *
 * @returns undefined when `permission_url` is an authorize endpoint and `token_url` does not end in `/token`.
 */
export function deviceAuthorizationEndpoint(account: AccountConfig): string | undefined {
  const permission = endpointUrl(account.permissionUrl, 'permission_url');
  if (!/\/authorize\/?$/.test(permission.pathname)) return permission.href;
  const token = endpointUrl(account.tokenUrl, 'token_url');
  if (!/\/token\/?$/.test(token.pathname)) return undefined;
  token.pathname = token.pathname.replace(/token(\/?)$/, 'devicecode$1');
  token.search = '';
  return token.href;
}

function endpointUrl(value: string, key: ConfigKey): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(
      key,
      `${key} is not a valid address`,
      `Set ${key} to a full https:// address.`,
    );
  }
  if (!isAllowedEndpoint(url)) {
    throw configError(
      key,
      `${key} must use https`,
      `Set ${key} to an https:// address (plain http is only allowed for loopback hosts).`,
    );
  }
  return url;
}

function configError(key: ConfigKey, message: string, hint: string): OAuthError {
  return new OAuthError(message, { kind: 'config', code: 'invalid_config', hint, configKey: key });
}

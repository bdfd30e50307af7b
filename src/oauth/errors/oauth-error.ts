/**
 * The one error type for every way talking to the identity provider can fail. Its `kind` tells
 * the token manager what to do (docs/providers.md, "What a token-endpoint error means"):
 *
 * | kind          | the token manager...                                                      |
 * |---------------|---------------------------------------------------------------------------|
 * | `transient`   | keeps every token, backs off, tells mail clients to try again             |
 * | `reauthorise` | drops the refresh token and starts a new authorisation                    |
 * | `config`      | stops and tells the user which config key to fix; never loops             |
 * | `paste`       | keeps the pending authorisation and asks for the redirect address again   |
 * | `credentials` | (password grant only) refuses the login: the provider refused the password |
 *
 * Messages and hints never carry token values or secrets (see `redactTokens`), and the original
 * error (whose `cause` can hold a whole token response) is not attached.
 */

/** The config key a user must edit, when the fix is in the config file. */
export type ConfigKey =
  | 'client_id'
  | 'client_secret'
  | 'redirect_uri'
  | 'oauth2_scope'
  | 'permission_url'
  | 'token_url'
  | 'oauth2_flow'
  | 'jwt_certificate_path'
  | 'jwt_key_path';

/** The account keys a `config` error can blame. */
export type OAuthConfigKey = ConfigKey;

export type OAuthErrorKind = 'transient' | 'reauthorise' | 'config' | 'paste' | 'credentials';

/** Which exchange failed: the same `error` code means different things in different grants. */
export type OAuthRequestContext =
  /** Refresh token grant. */
  | 'refresh'
  /** Redeeming a code from a pasted redirect address at the token endpoint. */
  | 'authorization_code'
  /** An `error=` the authorization endpoint put in the redirect address the user pasted. */
  | 'authorization_response'
  /** Device authorization request or polling. */
  | 'device'
  | 'client_credentials'
  /** The resource owner password credentials grant (`oauth2_flow = password`). */
  | 'password'
  /** A Google service account's JWT bearer grant (`oauth2_flow = service_account`). */
  | 'service_account';

export interface OAuthErrorDetails {
  readonly kind: OAuthErrorKind;
  /** The OAuth `error` code, or a local one: `network`, `dns`, `tls`, `timeout`, `aborted`, `http_503`, `bad_response`, `no_code`... */
  readonly code: string;
  /** What the user should do. */
  readonly hint: string;
  /** Microsoft's AADSTS number, when the provider sent one. */
  readonly aadsts?: number;
  /** The HTTP status of the failed response, when there was one. */
  readonly status?: number;
  /** The provider's `error_description`, first line only, token-like strings blanked. */
  readonly description?: string;
  /** For `config` errors: the key in the account section to fix. */
  readonly configKey?: OAuthConfigKey;
}

/** A classified identity-provider failure. `message` says what happened, `hint` what to do. */
export class OAuthError extends Error {
  readonly kind: OAuthErrorKind;
  readonly code: string;
  readonly hint: string;
  readonly aadsts?: number;
  readonly status?: number;
  readonly description?: string;
  readonly configKey?: OAuthConfigKey;

  constructor(message: string, details: OAuthErrorDetails) {
    super(message);
    this.name = 'OAuthError';
    this.kind = details.kind;
    this.code = details.code;
    this.hint = details.hint;
    if (details.aadsts !== undefined) this.aadsts = details.aadsts;
    if (details.status !== undefined) this.status = details.status;
    if (details.description !== undefined) this.description = details.description;
    if (details.configKey !== undefined) this.configKey = details.configKey;
  }
}

/** Blanks anything long enough to be a token or code; GUIDs (36 characters) and AADSTS text survive. */
export function redactTokens(text: string): string {
  return text.replace(/[A-Za-z0-9._~+/=-]{40,}/g, '[redacted]');
}

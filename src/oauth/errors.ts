/**
 * One error type for every way talking to the identity provider can fail, classified so the
 * token manager knows what to do (OFFICE365.md, "Classifying token-endpoint errors"):
 *
 * | kind          | the token manager...                                                      |
 * |---------------|---------------------------------------------------------------------------|
 * | `transient`   | keeps every token, backs off, tells mail clients to try again             |
 * | `reauthorise` | drops the refresh token and starts a new authorisation                    |
 * | `config`      | stops and tells the user which config key to fix; never loops             |
 * | `paste`       | keeps the pending authorisation and asks for the redirect address again   |
 * | `credentials` | (password grant only) refuses the login: the provider refused the password |
 *
 * The OAuth `error` code decides the kind; AADSTS numbers only choose the hint text. Two places
 * need more than the `error` code, and say so where they decide:
 * - `invalid_grant` while redeeming a pasted code means that code is bad (expired, already used),
 *   not that a refresh token died, so it is a `paste` problem;
 * - `invalid_request` covers a truncated paste (AADSTS9002313) as well as a missing scope
 *   (AADSTS900144), so there the AADSTS number picks the kind.
 * - `invalid_grant` from the password grant means the provider refused the user's name or
 *   password, unless its AADSTS number says the sign-in needs a step no password can do
 *   (multi-factor authentication, consent: AADSTS50076, 50079, 65001...), which is a `config`
 *   problem: the account needs a flow with a browser.
 * - `invalid_grant` from a Google service account's JWT bearer grant means Google refused the
 *   signed assertion (a deleted key, a user outside the domain, a wrong clock): there is no
 *   refresh token to drop, so it is a `config` problem, and its description picks the hint.
 *
 * Messages and hints never carry token values or secrets: server descriptions are cut to their
 * first line and long token-like runs are blanked, and the original error (whose `cause` can hold
 * a whole token response) is not attached.
 */
import {
  AuthorizationResponseError,
  ClientError,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'openid-client';
import { AADSTS_ADVICE, aadstsNumber, type ConfigKey } from './aadsts.js';

export type { ConfigKey } from './aadsts.js';

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

interface ErrorAdvice {
  readonly kind: OAuthErrorKind;
  readonly hint: string;
  readonly configKey?: ConfigKey;
}

const AUTHORISE_AGAIN = 'Authorise the account again.';
const OPEN_LINK_AGAIN = 'Open the sign-in link again and paste the new address.';
const TRY_LATER =
  'The identity provider is unavailable; tokens are kept and the request will be retried.';

const ERROR_ADVICE: Readonly<Record<string, ErrorAdvice>> = {
  invalid_grant: {
    kind: 'reauthorise',
    hint: `The provider no longer accepts the saved refresh token (expired, revoked, or the password changed). ${AUTHORISE_AGAIN}`,
  },
  interaction_required: {
    kind: 'reauthorise',
    hint: `The provider wants you to sign in interactively (for example for multi-factor authentication). ${AUTHORISE_AGAIN}`,
  },
  login_required: {
    kind: 'reauthorise',
    hint: `The provider wants you to sign in again. ${AUTHORISE_AGAIN}`,
  },
  consent_required: {
    kind: 'reauthorise',
    hint: 'Consent for this app is missing. Authorise again and accept the consent prompt; if your organisation blocks user consent, an administrator must approve the client_id.',
  },
  access_denied: {
    kind: 'reauthorise',
    hint: `The sign-in was declined or cancelled. ${AUTHORISE_AGAIN}`,
  },
  authorization_declined: {
    kind: 'reauthorise',
    hint: `The sign-in was declined. ${AUTHORISE_AGAIN}`,
  },
  expired_token: {
    kind: 'reauthorise',
    hint: 'The device code expired before anyone approved it. Start the authorisation again and enter the new code sooner.',
  },
  bad_verification_code: {
    kind: 'reauthorise',
    hint: `The provider did not recognise the device code. ${AUTHORISE_AGAIN}`,
  },
  invalid_client: {
    kind: 'config',
    hint: 'The provider did not accept the client credentials: check client_id and client_secret (remove client_secret for a public client).',
    configKey: 'client_secret',
  },
  unauthorized_client: {
    kind: 'config',
    hint: 'This client_id may not use this grant: check client_id and oauth2_flow (the device flow needs "Allow public client flows" in the app registration).',
    configKey: 'client_id',
  },
  invalid_scope: {
    kind: 'config',
    hint: 'The provider rejected the requested scopes: fix oauth2_scope (Office 365: https://outlook.office.com/IMAP.AccessAsUser.All ... offline_access; Gmail: https://mail.google.com/).',
    configKey: 'oauth2_scope',
  },
  unsupported_grant_type: {
    kind: 'config',
    hint: 'The provider does not support this grant for this client: check oauth2_flow and token_url.',
    configKey: 'oauth2_flow',
  },
  unsupported_response_type: {
    kind: 'config',
    hint: 'The provider does not allow the authorization code flow for this client: check client_id and permission_url.',
    configKey: 'client_id',
  },
  redirect_uri_mismatch: {
    kind: 'config',
    hint: 'redirect_uri must be exactly one of the redirect URIs registered for the client_id.',
    configKey: 'redirect_uri',
  },
  invalid_request: {
    kind: 'config',
    hint: 'The provider rejected the request as malformed: check token_url, client_id and oauth2_scope.',
  },
  temporarily_unavailable: { kind: 'transient', hint: TRY_LATER },
  server_error: { kind: 'transient', hint: TRY_LATER },
  // openid-client handles these while polling; they only escape if a poll is cut short.
  authorization_pending: {
    kind: 'transient',
    hint: 'The device code is still waiting for approval.',
  },
  slow_down: { kind: 'transient', hint: 'The provider asked to poll more slowly.' },
};

/**
 * The password grant's refusals: the `error` codes with which a provider says no to this user
 * signing in with a password (as opposed to the client or the request being wrong).
 */
const PASSWORD_REFUSALS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'interaction_required',
  'login_required',
  'consent_required',
]);
const REFUSED_PASSWORD_HINT =
  "With oauth2_flow = password the mail client's password is the account's own password, and the identity provider checks it.";
const NEEDS_BROWSER_HINT =
  'The provider wants an interactive sign-in (multi-factor authentication or consent), which the password flow cannot do: ' +
  'set oauth2_flow = authorization_code (or device) and authorise the account once.';
/** Hints that say more than the table's for the password grant. */
const PASSWORD_GRANT_HINTS: Readonly<Record<string, string>> = {
  unauthorized_client:
    'This client_id may not use the password grant: in its app registration, turn on "Allow public client flows", or use oauth2_flow = authorization_code.',
  unsupported_grant_type:
    'The provider does not offer the password grant (Google and personal Microsoft accounts do not): use oauth2_flow = authorization_code.',
};

/**
 * Google's refusals of a service account's assertion. Its `error_description`s are short fixed
 * sentences ("Invalid JWT Signature.", "Invalid email or User ID", "Client is unauthorized to
 * retrieve access tokens using this method..."), so they choose the hint.
 */
const SERVICE_ACCOUNT_KEY_FIX =
  'create a new JSON key for the service account (Google Cloud console: IAM & Admin > Service accounts > Keys) and put it, or its path, in client_secret';
const SERVICE_ACCOUNT_INVALID_GRANT: ReadonlyArray<{
  readonly description: RegExp;
  readonly hint: string;
  readonly configKey?: ConfigKey;
}> = [
  {
    description: /signature/i,
    hint: `Google did not accept the key's signature: the key was probably deleted or disabled; ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  {
    description: /account not found|client.*not found/i,
    hint: `Google does not know this service account (deleted?): check client_email in the key, or ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  {
    description: /e-?mail|user ?id/i,
    hint: "Google does not know the login name as a user of the Workspace domain: log in with the user's full primary address (the service account acts as that user).",
  },
  {
    description: /\b(iat|exp)\b|timeframe|short-lived|expired/i,
    hint: "Google judged the assertion's time wrong: check this machine's clock.",
  },
];
const SERVICE_ACCOUNT_REFUSED_HINT =
  "Google refused the service account's assertion: check the key in client_secret, and that the login name is a user of the Workspace domain.";
/**
 * Google's wording when domain-wide delegation is missing: "Client is unauthorized to retrieve
 * access tokens using this method, or client not authorized for any of the scopes requested."
 */
const DOMAIN_WIDE_DELEGATION_HINT =
  'Domain-wide delegation is missing for this service account or these scopes: in the Google Admin console (Security > Access and data control > ' +
  "API controls > Domain-wide delegation) add the service account's client ID (client_id in its JSON key) with exactly the scopes " +
  'in oauth2_scope (for mail: https://mail.google.com/); changes can take a few minutes to apply.';
const SERVICE_ACCOUNT_HINTS: Readonly<Record<string, ErrorAdvice>> = {
  unauthorized_client: { kind: 'config', hint: DOMAIN_WIDE_DELEGATION_HINT },
  invalid_client: {
    kind: 'config',
    hint: `Google did not accept the service account: check client_email in the key, or ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  unsupported_grant_type: {
    kind: 'config',
    hint: "The token endpoint does not take service account assertions: check token_uri in the service account's key (Google's is https://oauth2.googleapis.com/token).",
    configKey: 'client_secret',
  },
};

const BAD_CODE_HINT = `The provider did not accept the pasted code (codes expire within minutes and work only once). ${OPEN_LINK_AGAIN}`;

/** The table kinds of the AADSTS codes, so their hints are only used where they fit the final kind. */
const AADSTS_KIND: ReadonlyMap<number, OAuthErrorKind> = new Map([
  ...[70000, 70008, 700082, 50173, 70043, 50076, 50079, 65001].map(
    (n) => [n, 'reauthorise'] as const,
  ),
  ...[7000218, 700025, 7000112, 700016, 50011, 900144, 7000215, 7000222, 700027, 700024].map(
    (n) => [n, 'config'] as const,
  ),
  ...[9002313, 54005].map((n) => [n, 'paste'] as const),
]);

const CONTEXT_LABEL: Readonly<Record<OAuthRequestContext, string>> = {
  refresh: 'Refreshing the access token',
  authorization_code: 'Redeeming the pasted authorization code',
  authorization_response: 'The sign-in',
  device: 'The device authorisation',
  client_credentials: 'The client credentials grant',
  password: 'The password grant',
  service_account: 'The service account token request',
};

function label(context: OAuthRequestContext | undefined): string {
  return context === undefined ? 'The identity provider request' : CONTEXT_LABEL[context];
}

/** Blanks anything long enough to be a token or code; GUIDs (36 characters) and AADSTS text survive. */
export function redactTokens(text: string): string {
  return text.replace(/[A-Za-z0-9._~+/=-]{40,}/g, '[redacted]');
}

function firstLine(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const line = text.split(/\r?\n/, 1)[0]?.trim();
  return line ? redactTokens(line).slice(0, 300) : undefined;
}

/** The fields of an OAuth error response, wherever it came from (token endpoint body, redirect address, challenge). */
export interface OAuthErrorFields {
  readonly error: string;
  readonly errorDescription?: unknown;
  readonly errorCodes?: unknown;
  readonly status?: number;
}

/** Classifies an OAuth error response by its `error` code (see the module comment for the two exceptions). */
export function classifyOAuthErrorResponse(
  fields: OAuthErrorFields,
  context?: OAuthRequestContext,
): OAuthError {
  const error = fields.error;
  const aadsts = aadstsNumber(fields.errorCodes, fields.errorDescription);
  const description = firstLine(fields.errorDescription);
  const advice = ERROR_ADVICE[error];
  const aadstsAdvice = aadsts === undefined ? undefined : AADSTS_ADVICE.get(aadsts);

  let kind: OAuthErrorKind = advice?.kind ?? 'config';
  let hint =
    advice?.hint ??
    `The provider refused the request with "${error}": check the account's configuration.`;
  let configKey = advice?.configKey;

  if (fields.status !== undefined && isTransientStatus(fields.status)) {
    kind = 'transient';
    hint = TRY_LATER;
  } else if (error === 'invalid_request') {
    kind =
      aadstsAdvice?.kindForInvalidRequest ??
      (context === 'authorization_code' ? 'paste' : 'config');
    if (kind === 'paste') hint = BAD_CODE_HINT;
  } else if (error === 'invalid_grant' && context === 'authorization_code') {
    kind = 'paste';
    hint = BAD_CODE_HINT;
  } else if (context === 'password' && PASSWORD_REFUSALS.has(error)) {
    const specific = aadstsAdvice?.forPasswordGrant;
    kind = specific?.kind ?? (error === 'invalid_grant' ? 'credentials' : 'config');
    hint = specific?.hint ?? (kind === 'credentials' ? REFUSED_PASSWORD_HINT : NEEDS_BROWSER_HINT);
    configKey = 'oauth2_flow';
  } else if (context === 'password' && PASSWORD_GRANT_HINTS[error] !== undefined) {
    hint = PASSWORD_GRANT_HINTS[error];
  } else if (context === 'service_account' && error === 'invalid_grant') {
    const specific = SERVICE_ACCOUNT_INVALID_GRANT.find((advice) =>
      advice.description.test(description ?? ''),
    );
    kind = 'config';
    hint = specific?.hint ?? SERVICE_ACCOUNT_REFUSED_HINT;
    configKey = specific?.configKey;
  } else if (context === 'service_account' && SERVICE_ACCOUNT_HINTS[error] !== undefined) {
    ({ kind, hint, configKey } = SERVICE_ACCOUNT_HINTS[error]);
  } else if (context === 'authorization_response' && kind === 'transient') {
    // Nothing to retry: the browser already showed the failure; only a new sign-in helps.
    kind = 'paste';
    hint = `The provider could not complete the sign-in. ${OPEN_LINK_AGAIN}`;
  }

  if (aadstsAdvice !== undefined && aadsts !== undefined && AADSTS_KIND.get(aadsts) === kind) {
    hint = aadstsAdvice.hint;
    // The code is more precise than the `error`: a clock that is off is no key's fault.
    configKey = aadstsAdvice.configKey;
  }
  if (kind !== 'config') configKey = undefined;

  const detail =
    description ?? (aadstsAdvice ? `AADSTS${aadsts}: ${aadstsAdvice.meaning}` : undefined);
  return new OAuthError(`${label(context)} failed: ${error}${detail ? ` (${detail})` : ''}`, {
    kind,
    code: error,
    hint,
    ...(aadsts !== undefined && { aadsts }),
    ...(fields.status !== undefined && { status: fields.status }),
    ...(description !== undefined && { description }),
    ...(configKey !== undefined && { configKey }),
  });
}

function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** Classifies a response that is not an OAuth error body (HTML error page, wrong status, not JSON). */
function classifyHttpResponse(
  response: Response,
  context: OAuthRequestContext | undefined,
): OAuthError {
  const status = response.status;
  const where = response.url ? ` from ${redactTokens(response.url.split('?')[0] ?? '')}` : '';
  if (isTransientStatus(status)) {
    return new OAuthError(`${label(context)} failed: HTTP ${status}${where}`, {
      kind: 'transient',
      code: `http_${status}`,
      hint: TRY_LATER,
      status,
    });
  }
  if (status === 401) {
    return new OAuthError(`${label(context)} failed: HTTP 401${where}`, {
      kind: 'config',
      code: 'http_401',
      hint: 'The provider refused the client credentials: check client_id and client_secret.',
      status,
      configKey: 'client_secret',
    });
  }
  if (status === 404 || status === 405 || status === 410) {
    const configKey: ConfigKey = context === 'device' ? 'permission_url' : 'token_url';
    return new OAuthError(`${label(context)} failed: HTTP ${status}${where}`, {
      kind: 'config',
      code: `http_${status}`,
      hint: `There is no OAuth endpoint at that address: check ${configKey}${configKey === 'token_url' ? '' : ' and token_url'}.`,
      status,
      configKey,
    });
  }
  // A proxy, captive portal or half-deployed server: nothing in the config to blame, try later.
  return badResponse(context, `HTTP ${status}${where} with an unexpected body`, status);
}

function badResponse(
  context: OAuthRequestContext | undefined,
  what: string,
  status?: number,
): OAuthError {
  return new OAuthError(`${label(context)} failed: ${what}`, {
    kind: 'transient',
    code: 'bad_response',
    hint: 'The identity provider sent a response that is not a valid OAuth answer (a proxy or captive portal in the way?); tokens are kept and the request will be retried.',
    ...(status !== undefined && { status }),
  });
}

const NETWORK_CODES: ReadonlyArray<[RegExp, string, string]> = [
  [
    /^(ENOTFOUND|EAI_AGAIN|EAI_NONAME)$/,
    'dns',
    "The identity provider's host name could not be resolved",
  ],
  [
    /^(ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/,
    'timeout',
    'The identity provider did not answer in time',
  ],
  [
    /CERT|^UNABLE_TO_|SELF_SIGNED|^ERR_TLS|^ERR_SSL|^EPROTO$/,
    'tls',
    'The TLS connection to the identity provider failed',
  ],
];

function errnoCode(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null) return undefined;
  const { code, errors } = cause as { code?: unknown; errors?: unknown };
  if (typeof code === 'string') return code;
  if (Array.isArray(errors)) return errnoCode(errors[0]);
  return undefined;
}

function classifyNetworkFailure(err: Error, context: OAuthRequestContext | undefined): OAuthError {
  const code = errnoCode(err.cause) ?? errnoCode(err);
  for (const [pattern, local, what] of NETWORK_CODES) {
    if (code !== undefined && pattern.test(code)) {
      return new OAuthError(`${label(context)} failed: ${what} (${code})`, {
        kind: 'transient',
        code: local,
        hint:
          local === 'tls'
            ? 'Check the system clock and any TLS-intercepting proxy; tokens are kept and the request will be retried.'
            : 'Check the network connection; tokens are kept and the request will be retried.',
      });
    }
  }
  return new OAuthError(`${label(context)} failed: network error${code ? ` (${code})` : ''}`, {
    kind: 'transient',
    code: 'network',
    hint: 'Check the network connection; tokens are kept and the request will be retried.',
  });
}

function timeout(context: OAuthRequestContext | undefined): OAuthError {
  return new OAuthError(`${label(context)} failed: the identity provider did not answer in time`, {
    kind: 'transient',
    code: 'timeout',
    hint: 'Tokens are kept and the request will be retried.',
  });
}

function aborted(context: OAuthRequestContext | undefined): OAuthError {
  return new OAuthError(`${label(context)} was cancelled`, {
    kind: 'transient',
    code: 'aborted',
    hint: 'The request was cancelled before the provider answered; tokens are kept.',
  });
}

function isResponse(value: unknown): value is Response {
  return value instanceof Response;
}

/** The `error` parameter of a `WWW-Authenticate` challenge, when the server put one there. */
function challengeError(err: WWWAuthenticateChallengeError): OAuthErrorFields | undefined {
  for (const challenge of err.cause) {
    const error = challenge.parameters['error'];
    if (error) {
      return {
        error,
        errorDescription: challenge.parameters['error_description'],
        status: err.status,
      };
    }
  }
  return undefined;
}

/** openid-client's and oauth4webapi's stable error codes, mapped to what they mean for us. */
function classifyCodedError(
  err: Error & { code?: unknown },
  context: OAuthRequestContext | undefined,
): OAuthError {
  const cause: unknown = err.cause;
  switch (err.code) {
    case 'OAUTH_TIMEOUT':
      return timeout(context);
    case 'OAUTH_ABORT':
      return aborted(context);
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
      return isResponse(cause)
        ? classifyHttpResponse(cause, context)
        : badResponse(context, 'unexpected response');
    case 'OAUTH_PARSE_ERROR':
      return badResponse(context, 'the response body is not valid JSON');
    case 'OAUTH_INVALID_RESPONSE':
      return badResponse(context, 'the response is missing required fields');
    case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
    case 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN':
      return new OAuthError(`${label(context)} failed: the endpoint address is not https`, {
        kind: 'config',
        code: 'insecure_endpoint',
        hint: 'token_url and permission_url must be https:// addresses (plain http is only allowed for loopback hosts).',
        configKey: 'token_url',
      });
    case 'OAUTH_MISSING_SERVER_METADATA':
    case 'OAUTH_INVALID_SERVER_METADATA':
      return new OAuthError(`${label(context)} failed: an endpoint address is missing or invalid`, {
        kind: 'config',
        code: 'invalid_endpoint',
        hint: 'Check permission_url and token_url: both must be full https:// addresses.',
        configKey: context === 'device' || context === undefined ? 'permission_url' : 'token_url',
      });
    case 'OAUTH_UNSUPPORTED_OPERATION':
      return new OAuthError(
        `${label(context)} failed: the provider answered with something this proxy cannot use`,
        {
          kind: 'config',
          code: 'unsupported',
          hint: 'The provider issued a token type other than Bearer; this provider or client_id is not usable for XOAUTH2.',
          configKey: 'client_id',
        },
      );
    case 'ERR_INVALID_ARG_VALUE':
    case 'ERR_INVALID_ARG_TYPE':
    case 'ERR_INVALID_URL':
      return new OAuthError(`${label(context)} failed: ${err.message}`, {
        kind: 'config',
        code: 'invalid_config',
        hint: 'Check client_id, permission_url and token_url in the account section.',
      });
    default:
      if (typeof err.code === 'string' && /^OAUTH_/.test(err.code)) {
        return badResponse(context, `the response failed validation (${err.code})`);
      }
      return new OAuthError(`${label(context)} failed unexpectedly: ${redactTokens(err.message)}`, {
        kind: 'transient',
        code: 'unexpected',
        hint: 'Tokens are kept and the request will be retried; if this repeats, run with --debug and report it.',
      });
  }
}

/**
 * Converts whatever an openid-client call threw into an `OAuthError`. Synchronous; a
 * `WWW-Authenticate` challenge without an `error` parameter is judged by its status alone (use
 * `explainOAuthFailure` to read its body as well).
 */
export function classifyOAuthFailure(err: unknown, context?: OAuthRequestContext): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof ResponseBodyError) {
    return classifyOAuthErrorResponse(
      {
        error: err.error,
        errorDescription: err.error_description,
        errorCodes: err.cause['error_codes'],
        status: err.status,
      },
      context,
    );
  }
  if (err instanceof AuthorizationResponseError) {
    return classifyOAuthErrorResponse(
      { error: err.error, errorDescription: err.error_description },
      context ?? 'authorization_response',
    );
  }
  if (err instanceof WWWAuthenticateChallengeError) {
    const fields = challengeError(err);
    if (fields) return classifyOAuthErrorResponse(fields, context);
    return classifyHttpResponse(err.response, context);
  }
  if (
    err instanceof DOMException ||
    (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
  ) {
    const name = (err as Error).name;
    if (name === 'TimeoutError') return timeout(context);
    if (name === 'AbortError') return aborted(context);
  }
  if (err instanceof ClientError && err.code === undefined && err.cause !== undefined) {
    // "something went wrong": openid-client wraps what it does not recognise; judge the wrapped error.
    return classifyOAuthFailure(err.cause, context);
  }
  if (err instanceof Error) {
    const coded = err as Error & { code?: unknown };
    if (err instanceof TypeError && typeof coded.code !== 'string') {
      // undici: TypeError("fetch failed" / "terminated") with the socket error as cause.
      return classifyNetworkFailure(err, context);
    }
    return classifyCodedError(coded, context);
  }
  return new OAuthError(`${label(context)} failed unexpectedly`, {
    kind: 'transient',
    code: 'unexpected',
    hint: 'Tokens are kept and the request will be retried; if this repeats, run with --debug and report it.',
  });
}

/**
 * Like `classifyOAuthFailure`, but first reads the body of a `WWW-Authenticate` challenge
 * response (openid-client leaves it unread), since Azure AD and others put the OAuth error there.
 */
export async function explainOAuthFailure(
  err: unknown,
  context?: OAuthRequestContext,
): Promise<OAuthError> {
  if (err instanceof WWWAuthenticateChallengeError && challengeError(err) === undefined) {
    const body = await readJsonErrorBody(err.response);
    if (body !== undefined) {
      return classifyOAuthErrorResponse(
        {
          error: body.error,
          errorDescription: body.error_description,
          errorCodes: body.error_codes,
          status: err.status,
        },
        context,
      );
    }
  }
  return classifyOAuthFailure(err, context);
}

async function readJsonErrorBody(
  response: Response,
): Promise<{ error: string; error_description?: unknown; error_codes?: unknown } | undefined> {
  if (response.bodyUsed || !/application\/json/i.test(response.headers.get('content-type') ?? ''))
    return undefined;
  try {
    const body: unknown = await response.json();
    if (
      typeof body === 'object' &&
      body !== null &&
      typeof (body as { error?: unknown }).error === 'string'
    ) {
      return body as { error: string };
    }
  } catch {
    // An unreadable body leaves the status to speak for itself.
  }
  return undefined;
}

/** Runs one provider exchange and rethrows any failure as a classified `OAuthError`. */
export async function withOAuthErrors<T>(
  context: OAuthRequestContext,
  exchange: () => Promise<T>,
): Promise<T> {
  try {
    return await exchange();
  } catch (err) {
    throw await explainOAuthFailure(err, context);
  }
}

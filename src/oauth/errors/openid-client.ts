/**
 * The classifier of what openid-client (and oauth4webapi, fetch, undici under it) throws: each
 * failure becomes an `OAuthError` of the right kind, through `classify.ts` when the provider
 * answered with an OAuth error.
 */
import {
  AuthorizationResponseError,
  ClientError,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'openid-client';
import {
  badResponse,
  classifyHttpResponse,
  classifyOAuthErrorResponse,
  label,
  type OAuthErrorFields,
} from './classify.js';
import { OAuthError, redactTokens, type OAuthRequestContext } from './oauth-error.js';

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

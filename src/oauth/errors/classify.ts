/**
 * Turns an OAuth error response (a token endpoint's body, an `error=` in a pasted redirect
 * address, a `WWW-Authenticate` challenge) or an HTTP answer that is not one into an `OAuthError`.
 *
 * The OAuth `error` code decides the kind; AADSTS numbers only choose the hint text. Where more
 * than the `error` code is needed, the branch says so:
 * - `invalid_grant` while redeeming a pasted code means that code is bad (expired, already used),
 *   not that a refresh token died, so it is a `paste` problem;
 * - `invalid_request` covers a truncated paste (AADSTS9002313) as well as a missing scope
 *   (AADSTS900144), so there the AADSTS number's kind, when it is `config` or `paste`, decides;
 * - `invalid_grant` from the password grant means the provider refused the user's name or
 *   password, unless its AADSTS number says the sign-in needs a step no password can do
 *   (multi-factor authentication, consent: AADSTS50076, 50079, 65001...), which is a `config`
 *   problem: the account needs a flow with a browser;
 * - `invalid_grant` from a Google service account's JWT bearer grant means Google refused the
 *   signed assertion (a deleted key, a user outside the domain, a wrong clock): there is no
 *   refresh token to drop, so it is a `config` problem, and its description picks the hint.
 *
 * Server descriptions are cut to their first line and long token-like runs are blanked.
 */
import {
  BAD_CODE_HINT,
  ERROR_ADVICE,
  OPEN_LINK_AGAIN,
  PASSWORD_GRANT_HINTS,
  PASSWORD_REFUSALS,
  NEEDS_BROWSER_HINT,
  REFUSED_PASSWORD_HINT,
  SERVICE_ACCOUNT_HINTS,
  SERVICE_ACCOUNT_INVALID_GRANT,
  SERVICE_ACCOUNT_REFUSED_HINT,
  TRY_LATER,
} from './advice.js';
import { AADSTS_ADVICE, aadstsNumber } from './aadsts.js';
import {
  OAuthError,
  redactTokens,
  type ConfigKey,
  type OAuthErrorKind,
  type OAuthRequestContext,
} from './oauth-error.js';

const CONTEXT_LABEL: Readonly<Record<OAuthRequestContext, string>> = {
  refresh: 'Refreshing the access token',
  authorization_code: 'Redeeming the pasted authorization code',
  authorization_response: 'The sign-in',
  device: 'The device authorisation',
  client_credentials: 'The client credentials grant',
  password: 'The password grant',
  service_account: 'The service account token request',
};

export function label(context: OAuthRequestContext | undefined): string {
  return context === undefined ? 'The identity provider request' : CONTEXT_LABEL[context];
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

/** Classifies an OAuth error response by its `error` code (see the module comment for the exceptions). */
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
  /** Set when the AADSTS entry already gave its password-grant hint. */
  let passwordGrantAdvice = false;

  if (fields.status !== undefined && isTransientStatus(fields.status)) {
    kind = 'transient';
    hint = TRY_LATER;
  } else if (error === 'invalid_request') {
    kind =
      aadstsAdvice?.kind === 'config' || aadstsAdvice?.kind === 'paste'
        ? aadstsAdvice.kind
        : context === 'authorization_code'
          ? 'paste'
          : 'config';
    if (kind === 'paste') hint = BAD_CODE_HINT;
  } else if (error === 'invalid_grant' && context === 'authorization_code') {
    kind = 'paste';
    hint = BAD_CODE_HINT;
  } else if (context === 'password' && PASSWORD_REFUSALS.has(error)) {
    const specific = aadstsAdvice?.forPasswordGrant;
    passwordGrantAdvice = specific !== undefined;
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

  if (aadstsAdvice?.kind === kind && !passwordGrantAdvice) {
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

export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** Classifies a response that is not an OAuth error body (HTML error page, wrong status, not JSON). */
export function classifyHttpResponse(
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

export function badResponse(
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

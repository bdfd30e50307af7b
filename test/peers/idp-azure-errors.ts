/**
 * Error bodies shaped like Azure AD's v2 endpoints, so the proxy's error classification is tested
 * against what Microsoft really sends: `error` stays the OAuth code, `error_description` starts
 * with `AADSTS<number>:`, and `error_codes`, `timestamp`, `trace_id`, `correlation_id` come along.
 */
import { randomUUID } from 'node:crypto';

/** An OAuth error response body as Azure AD writes it. */
export interface AzureErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri?: string;
}

// The AADSTS numbers Microsoft uses for each situation (see the table in docs/providers.md).
const CODE_BY_ERROR: Readonly<Record<string, number>> = {
  invalid_grant: 70000,
  invalid_client: 7000215,
  unauthorized_client: 700016,
  invalid_scope: 70011,
  invalid_request: 900144,
  unsupported_grant_type: 70003,
  authorization_pending: 70016,
  expired_token: 70020,
  access_denied: 70019,
  slow_down: 70016,
  invalid_target: 500011,
  consent_required: 65001,
  interaction_required: 50076,
  login_required: 50058,
  temporarily_unavailable: 50000,
  server_error: 50000,
};

/** The AADSTS number Azure AD would put on this error; oidc-provider's `detail` refines it. */
export function aadstsCode(error: string, detail = ''): number {
  if (error === 'invalid_grant') {
    if (/authorization code.*(consumed|already used)/i.test(detail)) return 54005;
    if (/expired/i.test(detail)) return 70008;
  }
  if (error === 'invalid_client') {
    if (/does not match the registered client authentication method/i.test(detail)) return 7000218;
  }
  return CODE_BY_ERROR[error] ?? 50000;
}

/**
 * Azure AD answers an unknown client id with `400 unauthorized_client` (AADSTS700016), where
 * oidc-provider says `401 invalid_client`; everything else keeps its OAuth error and status.
 */
export function azureErrorFor(error: string, detail = ''): { error: string; status?: number } {
  if (error === 'invalid_client' && /client not found/i.test(detail))
    return { error: 'unauthorized_client', status: 400 };
  return { error };
}

/**
 * Builds an Azure AD error body. `description` is the human part after the `AADSTSnnn:` prefix;
 * the trace, correlation and timestamp lines follow it as Microsoft appends them.
 */
export function azureErrorBody(
  error: string,
  description: string,
  code = aadstsCode(error, description),
): AzureErrorBody {
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const traceId = randomUUID();
  const correlationId = randomUUID();
  return {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

/** Whether a response body is an OAuth error object (as opposed to a token or introspection result). */
export function isOAuthErrorBody(
  body: unknown,
): body is { error: string; error_description?: string } {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { error?: unknown }).error === 'string'
  );
}

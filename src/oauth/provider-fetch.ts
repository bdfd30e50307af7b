/**
 * The `fetch` every identity-provider request goes through: it enforces the request timeout and
 * evens out provider quirks in successful JSON answers before openid-client validates them.
 */
import type { CustomFetch } from 'openid-client';

/**
 * Returns a fetch for openid-client's `customFetch` that aborts after `timeoutMs` (on top of any
 * signal openid-client passes, such as the device-polling one) and normalises 200 JSON bodies:
 *
 * - `id_token` is dropped. We never use it, and an id_token from Microsoft's `common` authority
 *   carries a per-tenant issuer that openid-client's issuer check rejects without discovery
 *   (docs/providers.md); users who add `openid` to `oauth2_scope` must not break their logins.
 * - a missing `token_type` becomes `Bearer` (some providers omit it; XOAUTH2 only uses Bearer).
 * - `verification_url` (Google's, and Azure AD v1's, spelling) becomes `verification_uri`, and a
 *   string `interval` becomes a number.
 */
export function providerFetch(timeoutMs: number): CustomFetch {
  const delay = Math.max(1, Math.round(timeoutMs));
  return async (url, options) => {
    const timeout = AbortSignal.timeout(delay);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const response = await fetch(url, {
      method: options.method,
      headers: options.headers,
      body: (options.body ?? null) as NonNullable<RequestInit['body']> | null,
      redirect: options.redirect,
      signal,
    });
    return normaliseSuccessBody(response);
  };
}

async function normaliseSuccessBody(response: Response): Promise<Response> {
  if (
    response.status !== 200 ||
    !/^application\/json\s*(;|$)/i.test(response.headers.get('content-type') ?? '')
  ) {
    return response;
  }
  const text = await response.text();
  let body = text;
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
      body = JSON.stringify(normaliseFields(json as Record<string, unknown>));
    }
  } catch {
    // Not JSON after all: hand the text on unchanged so openid-client reports the parse error.
  }
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

function normaliseFields(json: Record<string, unknown>): Record<string, unknown> {
  const { id_token: _ignored, ...rest } = json;
  if (typeof rest['access_token'] === 'string' && rest['token_type'] === undefined)
    rest['token_type'] = 'Bearer';
  if (rest['verification_uri'] === undefined && typeof rest['verification_url'] === 'string') {
    rest['verification_uri'] = rest['verification_url'];
  }
  if (typeof rest['interval'] === 'string' && Number.isFinite(Number(rest['interval']))) {
    rest['interval'] = Number(rest['interval']);
  }
  return rest;
}

/**
 * Koa middlewares that make oidc-provider's answers look like Microsoft's v2 endpoints: Azure AD
 * error bodies, Microsoft's device-code and token response fields, and authorization redirects
 * with `session_state` and without RFC 9207's `iss`.
 */
import { randomUUID } from 'node:crypto';

import type { Middleware, default as Provider } from 'oidc-provider';

import { aadstsCode, azureErrorBody, azureErrorFor, isOAuthErrorBody } from './idp-azure-errors.js';
import { ROUTES } from './idp-config.js';

/**
 * A `ctx.state` flag: the answer is someone else's (Google's service account grant) and keeps the
 * shape its handler gave it.
 */
export const KEEP_RESPONSE_SHAPE = 'testIdpKeepResponseShape';

/** Where the error events leave oidc-provider's internal detail (not in its response body). */
const ERROR_KEY = 'testIdpError';

/** Keeps each API error's detail on the request so {@link azureResponseShapes} can name the cause. */
export function rememberErrorDetails(provider: Provider): void {
  for (const event of ['grant.error', 'introspection.error', 'device_authorization.error']) {
    provider.on(event, (ctx, error) => {
      ctx.state[ERROR_KEY] = error;
    });
  }
}

/** Rewrites JSON answers of the token, device-code and introspection endpoints into Microsoft's shape. */
export function azureResponseShapes(options: {
  readonly deviceCodeIntervalSeconds?: number | undefined;
}): Middleware {
  return async (ctx, next) => {
    await next();
    const onApi =
      ctx.path === ROUTES.token ||
      ctx.path === ROUTES.device_authorization ||
      ctx.path === ROUTES.introspection;
    if (
      !onApi ||
      typeof ctx.body !== 'object' ||
      ctx.body === null ||
      ctx.state[KEEP_RESPONSE_SHAPE] === true
    )
      return;

    if (isOAuthErrorBody(ctx.body)) {
      const detail =
        (ctx.state[ERROR_KEY] as { error_detail?: string } | undefined)?.error_detail ?? '';
      const { error, error_description: description = error } = ctx.body;
      const azure = azureErrorFor(error, detail);
      if (azure.status !== undefined) ctx.status = azure.status;
      // A handler of ours that knows Microsoft's exact answer puts it in the detail: `AADSTSnnn: text`.
      const exact = /^AADSTS(\d+): (.*)$/s.exec(detail);
      if (exact !== null) {
        ctx.body = azureErrorBody(azure.error, exact[2]!, Number(exact[1]));
        return;
      }
      ctx.body = azureErrorBody(
        azure.error,
        detail === '' ? description : `${description} (${detail})`,
        aadstsCode(azure.error, detail),
      );
      return;
    }

    const body = ctx.body as Record<string, unknown>;
    if (ctx.path === ROUTES.device_authorization && typeof body.user_code === 'string') {
      // Microsoft sends `message` and no `verification_uri_complete`.
      delete body.verification_uri_complete;
      body.message = `To sign in, use a web browser to open the page ${String(body.verification_uri)} and enter the code ${body.user_code} to authenticate.`;
      if (options.deviceCodeIntervalSeconds !== undefined)
        body.interval = options.deviceCodeIntervalSeconds;
    } else if (ctx.path === ROUTES.token && typeof body.expires_in === 'number') {
      body.ext_expires_in = body.expires_in;
    }
  };
}

/**
 * Rewrites redirects back to a client: adds `session_state`, drops `iss`, and prefixes error
 * descriptions with their AADSTS number, as Microsoft's redirects look.
 */
export function microsoftRedirects(issuer: string): Middleware {
  return async (ctx, next) => {
    await next();
    const location = ctx.response.get('Location');
    if (ctx.status < 300 || ctx.status >= 400 || location === '') return;
    const target = URL.parse(location, issuer);
    if (target === null || target.origin === issuer) return;
    const { searchParams } = target;
    if (!searchParams.has('code') && !searchParams.has('error')) return;
    searchParams.delete('iss');
    if (searchParams.has('code') && !searchParams.has('session_state'))
      searchParams.set('session_state', randomUUID());
    const error = searchParams.get('error');
    if (error !== null) {
      const description = searchParams.get('error_description') ?? error;
      searchParams.set(
        'error_description',
        `AADSTS${aadstsCode(error, description)}: ${description}`,
      );
    }
    ctx.set('Location', target.href);
  };
}

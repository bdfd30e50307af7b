/**
 * Test-only faults for the identity provider's token endpoint: the next call(s) fail the way real
 * token endpoints fail (a dead grant, an outage, a broken body, no answer at all, an HTML error
 * page) so the proxy's error classification and back-off are tested against real HTTP.
 */
import type { KoaContext, Middleware } from 'oidc-provider';

import { azureErrorBody } from './idp-azure-errors.js';

/** How the next token-endpoint call fails. */
export type TokenFault = 'invalid_grant' | '503' | 'garbage' | 'timeout' | 'html500';

const IIS_ERROR_PAGE = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><title>500 - Internal server error.</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>500 - Internal server error.</h2>
<h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3></fieldset></div>
</body></html>`;

/** Queue of faults to inject, one per token request, in order. */
export class TokenFaults {
  readonly #queue: TokenFault[] = [];

  /** Makes the next `times` token-endpoint calls fail with `kind`, after any already queued. */
  failNext(kind: TokenFault, times = 1): void {
    for (let i = 0; i < times; i += 1) this.#queue.push(kind);
  }

  /** The fault for the request now arriving, if any; removes it from the queue. */
  take(): TokenFault | undefined {
    return this.#queue.shift();
  }

  /** Drops faults that were queued but never used. */
  clear(): void {
    this.#queue.length = 0;
  }
}

/**
 * Answers the current request with `fault`. A `timeout` leaves the response open; the server
 * destroys such connections when it stops or refuses connections.
 */
export function answerWithFault(ctx: KoaContext, fault: TokenFault): void {
  switch (fault) {
    case 'invalid_grant':
      ctx.status = 400;
      ctx.body = azureErrorBody(
        'invalid_grant',
        "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
        70000,
      );
      return;
    case '503':
      ctx.status = 503;
      ctx.set('Retry-After', '1');
      ctx.body = azureErrorBody(
        'temporarily_unavailable',
        'The server is temporarily too busy to handle the request. Please try again later.',
        50000,
      );
      return;
    case 'garbage':
      // A body cut off mid-way, as a broken proxy in front of the real endpoint produces.
      ctx.status = 200;
      ctx.type = 'application/json; charset=utf-8';
      ctx.body =
        '{"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All","expires_in":36';
      return;
    case 'html500':
      ctx.status = 500;
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = IIS_ERROR_PAGE;
      return;
    case 'timeout':
      ctx.respond = false;
      return;
  }
}

/** Token-endpoint calls seen since start (or the last reset), test helper calls excluded. */
export interface TokenRequestCounts {
  readonly total: number;
  /** Keyed by the raw `grant_type`, e.g. `refresh_token` or `urn:ietf:params:oauth:grant-type:device_code`. */
  readonly byGrantType: Readonly<Record<string, number>>;
}

/** Counts token-endpoint calls by grant type. */
export class TokenRequestCounter {
  #total = 0;
  #byGrantType: Record<string, number> = {};

  count(grantType: string): void {
    this.#total += 1;
    this.#byGrantType[grantType] = (this.#byGrantType[grantType] ?? 0) + 1;
  }

  snapshot(): TokenRequestCounts {
    return { total: this.#total, byGrantType: { ...this.#byGrantType } };
  }

  reset(): void {
    this.#total = 0;
    this.#byGrantType = {};
  }
}

async function readForm(ctx: KoaContext): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Koa middleware for the token endpoint: counts every call and answers with the next queued
 * fault instead of the real endpoint. Requests carrying `skipHeader` (the provider's own test
 * helpers) are neither counted nor faulted.
 */
export function faultableTokenEndpoint(settings: {
  readonly tokenPath: string;
  readonly faults: TokenFaults;
  readonly counter: TokenRequestCounter;
  readonly skipHeader: string;
}): Middleware {
  const { tokenPath, faults, counter, skipHeader } = settings;
  return async (ctx, next) => {
    if (ctx.path !== tokenPath || ctx.method !== 'POST' || ctx.get(skipHeader) !== '') {
      await next();
      return;
    }
    const fault = faults.take();
    if (fault !== undefined) {
      counter.count((await readForm(ctx)).get('grant_type') ?? 'unknown');
      answerWithFault(ctx, fault);
      return;
    }
    await next();
    const grantType = ctx.oidc?.params?.grant_type;
    counter.count(typeof grantType === 'string' ? grantType : 'unknown');
  };
}

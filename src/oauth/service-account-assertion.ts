/**
 * The signed JWT a service account trades for an access token (RFC 7523's JWT bearer grant, as
 * Google's "Using OAuth 2.0 for Server to Server Applications" describes it). A JWT is three
 * base64url parts; node:crypto signs the first two with the key's RSA private key (RS256).
 */
import { sign } from 'node:crypto';
import type { ServiceAccountKey } from './service-account-key.js';

/** Google accepts assertions valid for at most an hour. */
export const ASSERTION_LIFETIME_SECONDS = 3600;

/** The claims of a service account's assertion, as google-auth writes them. */
export interface AssertionClaims {
  /** The service account (`client_email`). */
  readonly iss: string;
  /** Space-separated scopes. */
  readonly scope: string;
  /** The token endpoint the assertion is for. */
  readonly aud: string;
  /** The user the service account acts as (domain-wide delegation). */
  readonly sub: string;
  readonly iat: number;
  readonly exp: number;
}

export interface AssertionRequest {
  /** The account's `oauth2_scope`, space-separated. */
  readonly scope: string;
  /** Whose mailbox: the login name. */
  readonly subject: string;
  /** Unix seconds; default now. */
  readonly issuedAt?: number;
}

/** The claims for `key` acting as `request.subject`, valid from `issuedAt` for an hour. */
export function assertionClaims(
  key: ServiceAccountKey,
  request: AssertionRequest,
): AssertionClaims {
  const iat = request.issuedAt ?? Math.floor(Date.now() / 1000);
  return {
    iss: key.clientEmail,
    scope: request.scope.split(/\s+/).filter(Boolean).join(' '),
    aud: key.tokenUri.href,
    sub: request.subject,
    iat,
    exp: iat + ASSERTION_LIFETIME_SECONDS,
  };
}

/** The RS256-signed JWT (`header.claims.signature`) for the token request's `assertion`. */
export function serviceAccountAssertion(key: ServiceAccountKey, request: AssertionRequest): string {
  const header = {
    alg: 'RS256',
    typ: 'JWT',
    ...(key.privateKeyId !== undefined && { kid: key.privateKeyId }),
  };
  const signingInput = `${base64url(header)}.${base64url(assertionClaims(key, request))}`;
  const signature = sign('sha256', Buffer.from(signingInput, 'utf8'), key.privateKey);
  return `${signingInput}.${signature.toString('base64url')}`;
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/**
 * The tokens a grant produced, in the shape the token store keeps (email-oauth2-proxy's
 * `access_token`, `access_token_expiry`, `refresh_token`).
 */
import type { TokenEndpointResponse } from 'openid-client';

export interface TokenSet {
  readonly accessToken: string;
  /** Unix seconds after which the access token is no longer valid. */
  readonly expiresAt: number;
  /**
   * The refresh token to keep. Microsoft rotates it on every use, so after a refresh this is
   * usually a new one that must replace the old in the store.
   */
  readonly refreshToken?: string;
  /**
   * Only set by `refresh`: true when the provider sent no new refresh token and `refreshToken`
   * is the one that was passed in (Google does this), false when it is a new one.
   */
  readonly refreshTokenKept?: boolean;
}

/** Lifetime assumed when a provider leaves out `expires_in`: short enough to refresh in time. */
export const DEFAULT_EXPIRES_IN_SECONDS = 3600;

/**
 * Converts a token endpoint response. `requestedAtMs` is when the request was sent, so latency
 * makes the expiry early, never late.
 */
export function toTokenSet(response: TokenEndpointResponse, requestedAtMs: number): TokenSet {
  const lifetime = response.expires_in ?? DEFAULT_EXPIRES_IN_SECONDS;
  return {
    accessToken: response.access_token,
    expiresAt: Math.floor(requestedAtMs / 1000) + Math.floor(lifetime),
    ...(response.refresh_token !== undefined && { refreshToken: response.refresh_token }),
  };
}

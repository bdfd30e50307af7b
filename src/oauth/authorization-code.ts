/**
 * The authorization code flow for headless users: we print a sign-in link, the user signs in
 * in any browser, and pastes back the address the browser was sent to (which usually fails to
 * load: `https://localhost/...` or Microsoft's `nativeclient` page). PKCE (S256) and `state`
 * protect the exchange.
 */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { classifyOAuthErrorResponse, OAuthError, withOAuthErrors } from './errors.js';
import { isPasteProblem, parsePastedRedirect, type PasteProblem } from './paste.js';
import { createProviderClient, type ProviderClientOptions } from './provider-client.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/** What must be kept between handing out the link and receiving the paste. */
export interface PendingAuthorization {
  /** The sign-in link to show the user. */
  readonly url: string;
  readonly state: string;
  /** PKCE secret; keep it out of logs. */
  readonly codeVerifier: string;
}

export interface StartAuthorizationOptions extends ProviderClientOptions {
  /**
   * Pre-fills the sign-in name. Defaults to the account name when that is a full address; pass
   * the login name for catch-all accounts (`[@example.com]`).
   */
  readonly loginHint?: string;
}

/**
 * Creates a sign-in link for the account. No request is made. `access_type=offline` is added as
 * email-oauth2-proxy does (Google issues no refresh token without it; Microsoft ignores it);
 * `prompt` and `response_mode` are left to the provider's defaults.
 */
export async function startAuthorization(
  account: AccountConfig,
  options: StartAuthorizationOptions = {},
): Promise<PendingAuthorization> {
  const config = createProviderClient(account, options);
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const loginHint = options.loginHint ?? (isFullAddress(account.name) ? account.name : undefined);
  const parameters: Record<string, string> = {
    ...(account.redirectUri && { redirect_uri: account.redirectUri }),
    scope: account.scope,
    state,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    access_type: 'offline',
    ...(loginHint !== undefined && { login_hint: loginHint }),
  };
  const url = await withOAuthErrors('authorization_response', async () =>
    client.buildAuthorizationUrl(config, parameters),
  );
  return { url: url.href, state, codeVerifier };
}

/**
 * Redeems the code in a pasted redirect address.
 *
 * The token request carries the configured `redirect_uri` exactly as written (it must match the
 * authorization request character for character), not the pasted address, which may be the page
 * Microsoft bounced to or carry `session_state` and other extras.
 *
 * @throws OAuthError: `paste` for an unusable paste (no code, a different sign-in's state, not an
 *   address) or a code the provider refused; for an `error=` in the address, the kind of that error.
 */
export async function completeAuthorization(
  account: AccountConfig,
  pending: Pick<PendingAuthorization, 'state' | 'codeVerifier'>,
  pastedText: string,
  options: ProviderClientOptions = {},
): Promise<TokenSet> {
  const pasted = parsePastedRedirect(pastedText, pending.state);
  if (isPasteProblem(pasted)) throw pasteError(pasted);

  const config = createProviderClient(account, options);
  const requestedAt = Date.now();
  const response = await withOAuthErrors('authorization_code', () =>
    client.genericGrantRequest(config, 'authorization_code', {
      code: pasted.code,
      ...(account.redirectUri && { redirect_uri: account.redirectUri }),
      code_verifier: pending.codeVerifier,
    }),
  );
  return toTokenSet(response, requestedAt);
}

const PASTE_SUMMARY: Readonly<Record<Exclude<PasteProblem['problem'], 'error_in_url'>, string>> = {
  not_a_url: 'The pasted text is not a web address',
  no_code: 'The pasted address has no authorization code',
  state_mismatch: 'The pasted address does not belong to the current sign-in link',
};

function pasteError(problem: PasteProblem): OAuthError {
  if (problem.problem === 'error_in_url') {
    return classifyOAuthErrorResponse(
      { error: problem.error ?? 'error', errorDescription: problem.errorDescription },
      'authorization_response',
    );
  }
  return new OAuthError(PASTE_SUMMARY[problem.problem], {
    kind: 'paste',
    code: problem.problem,
    hint: problem.message,
  });
}

/** A real mailbox address, as opposed to a catch-all section (`@example.com`, `@`). */
function isFullAddress(name: string): boolean {
  return /^[^@\s]+@[^@\s]+$/.test(name);
}

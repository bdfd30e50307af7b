import type { OAuthError, OAuthErrorKind } from '../oauth/index.js';
import { LoginFailure, type LoginFailureReason } from './types.js';

/** What each kind of identity-provider failure means for a mail client waiting on its login. */
const REASON: Readonly<Record<OAuthErrorKind, LoginFailureReason>> = {
  // Tokens are kept; the client should come back later.
  transient: 'temporary',
  // Someone must sign in again; the client should come back once they have.
  reauthorise: 'authorisation-needed',
  paste: 'authorisation-needed',
  // The provider refused the password itself (`oauth2_flow = password`).
  credentials: 'bad-password',
  config: 'config',
};

/**
 * The one wording of an OAuth failure as a login failure: `doing` says what the proxy was trying
 * ("Cannot refresh the OAuth2 token for a@example.com"), the failure what went wrong and what to
 * do. The text goes to the mail client, so it carries no secret (an `OAuthError` never does).
 */
export function loginFailureFromOAuth(failure: OAuthError, doing: string): LoginFailure {
  return new LoginFailure(REASON[failure.kind], `${doing}: ${failure.message}. ${failure.hint}`);
}

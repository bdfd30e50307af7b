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

/** How one request's failures are put to the mail client. */
export interface OAuthFailureWording {
  /**
   * What the proxy was trying ("Cannot refresh the OAuth2 token for a@example.com"), or per kind,
   * where the same request reads differently by outcome.
   */
  readonly doing: string | ((kind: OAuthErrorKind) => string);
  /** The last sentence after a transient failure, instead of the hint. */
  readonly whenTransient?: string;
  /**
   * The reason for every kind but `transient`, for grants where nobody can sign in to fix it, so
   * the only cure is in the config.
   */
  readonly otherwise?: LoginFailureReason;
}

/**
 * The one wording of an OAuth failure as a login failure: what the proxy was doing, what went
 * wrong (the provider's own words when it refused a password) and what to do. The text goes to
 * the mail client, so it carries no secret (an `OAuthError` never does).
 */
export function loginFailureFromOAuth(
  failure: OAuthError,
  wording: OAuthFailureWording | string,
): LoginFailure {
  const { doing, whenTransient, otherwise } =
    typeof wording === 'string' ? { doing: wording } : wording;
  const prefix = typeof doing === 'string' ? doing : doing(failure.kind);
  const what =
    failure.kind === 'credentials'
      ? sentence(failure.description ?? failure.code)
      : `${failure.message}.`;
  const advice = failure.kind === 'transient' ? (whenTransient ?? failure.hint) : failure.hint;
  const reason = failure.kind === 'transient' ? 'temporary' : (otherwise ?? REASON[failure.kind]);
  return new LoginFailure(reason, `${prefix}: ${what} ${advice}`);
}

/** Ends the provider's words with a full stop, unless they already end a sentence. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

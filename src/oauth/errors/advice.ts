/**
 * What each OAuth `error` code means for a user of this proxy, and the hints that depend on the
 * exchange that failed (the password grant, a Google service account). Data only: `classify.ts`
 * decides which entry applies. AADSTS numbers have their own table in `aadsts.ts`.
 */
import type { ConfigKey, OAuthErrorKind } from './oauth-error.js';

export interface ErrorAdvice {
  readonly kind: OAuthErrorKind;
  readonly hint: string;
  readonly configKey?: ConfigKey;
}

const AUTHORIZE_AGAIN = 'Authorise the account again.';
export const OPEN_LINK_AGAIN = 'Open the sign-in link again and paste the new address.';
export const TRY_LATER =
  'The identity provider is unavailable; tokens are kept and the request will be retried.';

export const ERROR_ADVICE: Readonly<Record<string, ErrorAdvice>> = {
  invalid_grant: {
    kind: 'reauthorise',
    hint: `The provider no longer accepts the saved refresh token (expired, revoked, or the password changed). ${AUTHORIZE_AGAIN}`,
  },
  interaction_required: {
    kind: 'reauthorise',
    hint: `The provider wants you to sign in interactively (for example for multi-factor authentication). ${AUTHORIZE_AGAIN}`,
  },
  login_required: {
    kind: 'reauthorise',
    hint: `The provider wants you to sign in again. ${AUTHORIZE_AGAIN}`,
  },
  consent_required: {
    kind: 'reauthorise',
    hint: 'Consent for this app is missing. Authorise again and accept the consent prompt; if your organisation blocks user consent, an administrator must approve the client_id.',
  },
  access_denied: {
    kind: 'reauthorise',
    hint: `The sign-in was declined or cancelled. ${AUTHORIZE_AGAIN}`,
  },
  authorization_declined: {
    kind: 'reauthorise',
    hint: `The sign-in was declined. ${AUTHORIZE_AGAIN}`,
  },
  expired_token: {
    kind: 'reauthorise',
    hint: 'The device code expired before anyone approved it. Start the authorisation again and enter the new code sooner.',
  },
  bad_verification_code: {
    kind: 'reauthorise',
    hint: `The provider did not recognise the device code. ${AUTHORIZE_AGAIN}`,
  },
  invalid_client: {
    kind: 'config',
    hint: 'The provider did not accept the client credentials: check client_id and client_secret (remove client_secret for a public client).',
    configKey: 'client_secret',
  },
  unauthorized_client: {
    kind: 'config',
    hint: 'This client_id may not use this grant: check client_id and oauth2_flow (the device flow needs "Allow public client flows" in the app registration).',
    configKey: 'client_id',
  },
  invalid_scope: {
    kind: 'config',
    hint: 'The provider rejected the requested scopes: fix oauth2_scope (Office 365: https://outlook.office.com/IMAP.AccessAsUser.All ... offline_access; Gmail: https://mail.google.com/).',
    configKey: 'oauth2_scope',
  },
  unsupported_grant_type: {
    kind: 'config',
    hint: 'The provider does not support this grant for this client: check oauth2_flow and token_url.',
    configKey: 'oauth2_flow',
  },
  unsupported_response_type: {
    kind: 'config',
    hint: 'The provider does not allow the authorization code flow for this client: check client_id and permission_url.',
    configKey: 'client_id',
  },
  redirect_uri_mismatch: {
    kind: 'config',
    hint: 'redirect_uri must be exactly one of the redirect URIs registered for the client_id.',
    configKey: 'redirect_uri',
  },
  invalid_request: {
    kind: 'config',
    hint: 'The provider rejected the request as malformed: check token_url, client_id and oauth2_scope.',
  },
  temporarily_unavailable: { kind: 'transient', hint: TRY_LATER },
  server_error: { kind: 'transient', hint: TRY_LATER },
  // openid-client handles these while polling; they only escape if a poll is cut short.
  authorization_pending: {
    kind: 'transient',
    hint: 'The device code is still waiting for approval.',
  },
  slow_down: { kind: 'transient', hint: 'The provider asked to poll more slowly.' },
};

/**
 * The password grant's refusals: the `error` codes with which a provider says no to this user
 * signing in with a password (as opposed to the client or the request being wrong).
 */
export const PASSWORD_REFUSALS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'interaction_required',
  'login_required',
  'consent_required',
]);
export const REFUSED_PASSWORD_HINT =
  "With oauth2_flow = password the mail client's password is the account's own password, and the identity provider checks it.";
export const NEEDS_BROWSER_HINT =
  'The provider wants an interactive sign-in (multi-factor authentication or consent), which the password flow cannot do: ' +
  'set oauth2_flow = authorization_code (or device) and authorise the account once.';
/** Hints that say more than the table's for the password grant. */
export const PASSWORD_GRANT_HINTS: Readonly<Record<string, string>> = {
  unauthorized_client:
    'This client_id may not use the password grant: in its app registration, turn on "Allow public client flows", or use oauth2_flow = authorization_code.',
  unsupported_grant_type:
    'The provider does not offer the password grant (Google and personal Microsoft accounts do not): use oauth2_flow = authorization_code.',
};

/**
 * Google's refusals of a service account's assertion. Its `error_description`s are short fixed
 * sentences ("Invalid JWT Signature.", "Invalid email or User ID", "Client is unauthorized to
 * retrieve access tokens using this method..."), so they choose the hint.
 */
const SERVICE_ACCOUNT_KEY_FIX =
  'create a new JSON key for the service account (Google Cloud console: IAM & Admin > Service accounts > Keys) and put it, or its path, in client_secret';
export const SERVICE_ACCOUNT_INVALID_GRANT: ReadonlyArray<{
  readonly description: RegExp;
  readonly hint: string;
  readonly configKey?: ConfigKey;
}> = [
  {
    description: /signature/i,
    hint: `Google did not accept the key's signature: the key was probably deleted or disabled; ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  {
    description: /account not found|client.*not found/i,
    hint: `Google does not know this service account (deleted?): check client_email in the key, or ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  {
    description: /e-?mail|user ?id/i,
    hint: "Google does not know the login name as a user of the Workspace domain: log in with the user's full primary address (the service account acts as that user).",
  },
  {
    description: /\b(iat|exp)\b|timeframe|short-lived|expired/i,
    hint: "Google judged the assertion's time wrong: check this machine's clock.",
  },
];
export const SERVICE_ACCOUNT_REFUSED_HINT =
  "Google refused the service account's assertion: check the key in client_secret, and that the login name is a user of the Workspace domain.";
/**
 * Google's wording when domain-wide delegation is missing: "Client is unauthorized to retrieve
 * access tokens using this method, or client not authorized for any of the scopes requested."
 */
const DOMAIN_WIDE_DELEGATION_HINT =
  'Domain-wide delegation is missing for this service account or these scopes: in the Google Admin console (Security > Access and data control > ' +
  "API controls > Domain-wide delegation) add the service account's client ID (client_id in its JSON key) with exactly the scopes " +
  'in oauth2_scope (for mail: https://mail.google.com/); changes can take a few minutes to apply.';
export const SERVICE_ACCOUNT_HINTS: Readonly<Record<string, ErrorAdvice>> = {
  unauthorized_client: { kind: 'config', hint: DOMAIN_WIDE_DELEGATION_HINT },
  invalid_client: {
    kind: 'config',
    hint: `Google did not accept the service account: check client_email in the key, or ${SERVICE_ACCOUNT_KEY_FIX}.`,
    configKey: 'client_secret',
  },
  unsupported_grant_type: {
    kind: 'config',
    hint: "The token endpoint does not take service account assertions: check token_uri in the service account's key (Google's is https://oauth2.googleapis.com/token).",
    configKey: 'client_secret',
  },
};

export const BAD_CODE_HINT = `The provider did not accept the pasted code (codes expire within minutes and work only once). ${OPEN_LINK_AGAIN}`;

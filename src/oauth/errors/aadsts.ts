/**
 * What Microsoft's AADSTS numbers mean for a user of this proxy, each listed once with the kind
 * of failure it belongs to. The OAuth `error` code decides the kind (see `classify.ts`), because
 * Microsoft adds and renumbers AADSTS codes far more often than OAuth error codes change; an
 * entry's hint replaces the generic one only when the failure ended up of the entry's kind, and
 * its kind decides alone only for the too-broad `invalid_request`.
 *
 * Sources: Microsoft's "Microsoft Entra authentication and authorization error codes" page and
 * the facts collected in docs/providers.md.
 */
import type { ConfigKey, OAuthErrorKind } from './oauth-error.js';

/** What to tell the user about one AADSTS code. */
export interface AadstsAdvice {
  /** Microsoft's meaning, in a few words. */
  readonly meaning: string;
  /** The kind of failure this code is; `hint` and `configKey` apply to failures of this kind. */
  readonly kind: OAuthErrorKind;
  /** What the user should do. */
  readonly hint: string;
  /** Set when the fix is a config change. */
  readonly configKey?: ConfigKey;
  /**
   * Set where the code means something else when the password grant (`oauth2_flow = password`)
   * is refused: a password the provider did not take (`credentials`), or a sign-in step the
   * password grant cannot do (`config`: use a flow with a browser).
   */
  readonly forPasswordGrant?: { readonly kind: 'credentials' | 'config'; readonly hint: string };
}

const AUTHORIZE_AGAIN = 'Authorise the account again to get a new refresh token.';
/**
 * Microsoft documents that the password grant (ROPC) fails whenever the sign-in needs more than a
 * password: multi-factor authentication, a consent prompt, a federated identity provider.
 */
const BROWSER_FLOW_INSTEAD =
  'set oauth2_flow = authorization_code (or device) and authorise the account once; the proxy then refreshes by itself.';
const USE_BROWSER_FLOW = `the password flow cannot do that: ${BROWSER_FLOW_INSTEAD}`;

export const AADSTS_ADVICE: ReadonlyMap<number, AadstsAdvice> = new Map<number, AadstsAdvice>([
  [
    70000,
    {
      meaning: 'the grant (refresh token or code) is invalid or expired',
      kind: 'reauthorise',
      hint: `The provider no longer accepts the saved grant. ${AUTHORIZE_AGAIN}`,
    },
  ],
  [
    70008,
    {
      meaning: 'the refresh token or code expired',
      kind: 'reauthorise',
      hint: `The refresh token expired (it dies after 90 days without use). ${AUTHORIZE_AGAIN}`,
    },
  ],
  [
    700082,
    {
      meaning: 'the refresh token expired after 90 days without use',
      kind: 'reauthorise',
      hint: `The refresh token was unused for 90 days and expired. ${AUTHORIZE_AGAIN}`,
    },
  ],
  [
    50173,
    {
      meaning: 'the grant was revoked (password changed or sessions revoked)',
      kind: 'reauthorise',
      hint: `The sign-in was revoked, usually after a password change or an admin revoking sessions. ${AUTHORIZE_AGAIN}`,
    },
  ],
  [
    70043,
    {
      meaning: 'Conditional Access sign-in frequency ended the session',
      kind: 'reauthorise',
      hint: `Your organisation's Conditional Access policy requires signing in again after a set time; rotation cannot extend it. ${AUTHORIZE_AGAIN}`,
    },
  ],
  [
    50076,
    {
      meaning: 'multi-factor authentication is required',
      kind: 'reauthorise',
      hint: `Your organisation now requires multi-factor authentication for this sign-in. ${AUTHORIZE_AGAIN}`,
      forPasswordGrant: {
        kind: 'config',
        hint: `Your organisation requires multi-factor authentication for this sign-in, and ${USE_BROWSER_FLOW}`,
      },
    },
  ],
  [
    50079,
    {
      meaning: 'the user must enrol in multi-factor authentication',
      kind: 'reauthorise',
      hint: 'You must register for multi-factor authentication first (sign in at https://aka.ms/mfasetup), then authorise the account again.',
      forPasswordGrant: {
        kind: 'config',
        hint: `You must register for multi-factor authentication (https://aka.ms/mfasetup), and ${USE_BROWSER_FLOW}`,
      },
    },
  ],
  [
    65001,
    {
      meaning: 'consent for the application is missing',
      kind: 'reauthorise',
      hint: 'Nobody has consented to this app using your mailbox. Authorise again and accept the consent prompt; if your organisation blocks user consent, an administrator must grant consent for the client_id (or use a client_id your tenant already approved).',
      forPasswordGrant: {
        kind: 'config',
        hint: `Nobody has consented to this app using your mailbox, and the password flow cannot show the consent prompt: an administrator can grant consent for the client_id, or ${BROWSER_FLOW_INSTEAD}`,
      },
    },
  ],
  [
    50158,
    {
      meaning: 'an external security challenge was not satisfied',
      kind: 'reauthorise',
      hint: `Your organisation requires an extra sign-in step (a third-party MFA or Conditional Access control). ${AUTHORIZE_AGAIN}`,
      forPasswordGrant: {
        kind: 'config',
        hint: `Your organisation requires an extra sign-in step, and ${USE_BROWSER_FLOW}`,
      },
    },
  ],
  [
    53003,
    {
      meaning: 'a Conditional Access policy blocked the sign-in',
      kind: 'reauthorise',
      hint: 'A Conditional Access policy of your organisation blocked this sign-in; an administrator can tell which from the sign-in logs.',
      forPasswordGrant: {
        kind: 'config',
        hint: `A Conditional Access policy of your organisation blocked this sign-in (such policies often block sign-ins with a password alone); ${BROWSER_FLOW_INSTEAD}`,
      },
    },
  ],
  [
    50126,
    {
      meaning: 'the user name or password is invalid',
      kind: 'credentials',
      hint: 'The identity provider refused the user name or password.',
      forPasswordGrant: {
        kind: 'credentials',
        hint: "With oauth2_flow = password the mail client's password is the account's own password, and the identity provider checks it.",
      },
    },
  ],
  [
    50034,
    {
      meaning: 'the user account does not exist in the directory',
      kind: 'credentials',
      hint: "The identity provider does not know this user: the login name must be the account's sign-in address.",
      forPasswordGrant: {
        kind: 'credentials',
        hint: "The identity provider does not know this user: the login name must be the account's sign-in address.",
      },
    },
  ],
  [
    50053,
    {
      meaning: 'the account is locked',
      kind: 'credentials',
      hint: 'The account is locked, usually after too many failed sign-ins; wait a while before trying again.',
      forPasswordGrant: {
        kind: 'credentials',
        hint: 'The account is locked, usually after too many wrong passwords; wait a while, then log in with the right password.',
      },
    },
  ],
  [
    50055,
    {
      meaning: 'the password has expired',
      kind: 'credentials',
      hint: 'The password has expired: change it at the provider (Microsoft: https://aka.ms/sspr).',
      forPasswordGrant: {
        kind: 'credentials',
        hint: 'The password has expired: change it at the provider (Microsoft: https://aka.ms/sspr), then give the mail client the new one.',
      },
    },
  ],
  [
    50057,
    {
      meaning: 'the user account is disabled',
      kind: 'credentials',
      hint: 'The account is disabled at the identity provider; an administrator must enable it.',
      forPasswordGrant: {
        kind: 'credentials',
        hint: 'The account is disabled at the identity provider; an administrator must enable it.',
      },
    },
  ],
  [
    7000218,
    {
      meaning: 'the app requires a client secret',
      kind: 'config',
      hint: 'The app registration expects a client secret: set client_secret, or enable "Allow public client flows" in the app registration if this is a desktop app.',
      configKey: 'client_secret',
    },
  ],
  [
    700025,
    {
      meaning: 'the app is a public client and must not send a secret',
      kind: 'config',
      hint: 'This client_id is a public client: remove client_secret from the account section.',
      configKey: 'client_secret',
    },
  ],
  [
    7000112,
    {
      meaning: 'the application is disabled',
      kind: 'config',
      hint: 'This application is disabled (Microsoft turned off the old Thunderbird client_id, for example): set client_id to an enabled app.',
      configKey: 'client_id',
    },
  ],
  [
    700016,
    {
      meaning: 'the application was not found in the tenant',
      kind: 'config',
      hint: 'The tenant does not know this client_id: check client_id, and the tenant (common / organizations / your tenant ID) in permission_url and token_url.',
      configKey: 'client_id',
    },
  ],
  [
    50011,
    {
      meaning: 'the redirect URI does not match the app registration',
      kind: 'config',
      hint: "redirect_uri must be exactly one of the redirect URIs registered for the app (for Thunderbird's client_id that is https://localhost).",
      configKey: 'redirect_uri',
    },
  ],
  [
    900144,
    {
      meaning: 'a required parameter (usually scope) is missing',
      kind: 'config',
      hint: 'The request lacks a required parameter, usually the scope: set oauth2_scope (for example https://outlook.office.com/IMAP.AccessAsUser.All offline_access).',
      configKey: 'oauth2_scope',
    },
  ],
  [
    9002313,
    {
      meaning: 'the request was malformed (often a truncated or altered pasted code)',
      kind: 'paste',
      hint: 'The pasted code was cut short or altered. Open the sign-in link again and paste the complete address from the browser.',
    },
  ],
  [
    54005,
    {
      meaning: 'the authorization code was already redeemed',
      kind: 'paste',
      hint: 'This code was already used; a code works once. Open the sign-in link again and paste the new address.',
    },
  ],
  [
    7000215,
    {
      meaning: 'the client secret is invalid',
      kind: 'config',
      hint: "client_secret is wrong or expired. Use the secret's Value (not its Secret ID) from the app registration, or create a new secret.",
      configKey: 'client_secret',
    },
  ],
  [
    7000222,
    {
      meaning: 'the client secret has expired',
      kind: 'config',
      hint: 'The client secret has expired: create a new one in the app registration (Certificates & secrets) and put its Value in client_secret.',
      configKey: 'client_secret',
    },
  ],
  [
    700027,
    {
      meaning: 'the client assertion is not signed by a certificate the app knows',
      kind: 'config',
      hint: 'Upload the certificate in jwt_certificate_path to the app registration (Certificates & secrets), and check that jwt_key_path is its own private key.',
      configKey: 'jwt_certificate_path',
    },
  ],
  [
    700024,
    {
      meaning: 'the client assertion is not within its valid time range',
      kind: 'config',
      hint: "This machine's clock is off: the signed assertion looks expired or not yet valid to Microsoft. Synchronise the clock (NTP).",
    },
  ],
]);

/**
 * The AADSTS number of a Microsoft error: `error_codes[0]` when the body has it, else the
 * `AADSTSnnnn:` prefix of `error_description`.
 */
export function aadstsNumber(errorCodes: unknown, errorDescription: unknown): number | undefined {
  if (
    Array.isArray(errorCodes) &&
    typeof errorCodes[0] === 'number' &&
    Number.isInteger(errorCodes[0])
  ) {
    return errorCodes[0];
  }
  if (typeof errorDescription === 'string') {
    const match = /^\s*AADSTS(\d+)\b/.exec(errorDescription);
    if (match?.[1] !== undefined) return Number(match[1]);
  }
  return undefined;
}

/**
 * What the doctor knows about providers: which scopes and token audiences each mail protocol
 * needs, and which client IDs are known to fail. Sources: docs/providers.md (the project's collected
 * provider facts) and Microsoft Learn, "Authenticate an IMAP, POP or SMTP connection using OAuth".
 */
import { providerServers, type ProviderName, type ServerHint } from '../config/providers.js';
import type { AccountConfig, Protocol } from '../config/types.js';

/** Whose rules apply to an account: Microsoft's, Google's, or nobody's we know. */
export type ProviderFamily = 'microsoft' | 'google' | 'other';

const MICROSOFT_LOGIN_HOSTS = new Set([
  'login.microsoftonline.com',
  'login.live.com',
  'login.windows.net',
  'login.microsoft.com',
]);
const GOOGLE_LOGIN_HOSTS = new Set([
  'accounts.google.com',
  'oauth2.googleapis.com',
  'www.googleapis.com',
]);

/** The Exchange Online resource, under both spellings Microsoft accepts (docs/providers.md). */
export const OUTLOOK_RESOURCE_HOSTS: ReadonlySet<string> = new Set([
  'outlook.office.com',
  'outlook.office365.com',
]);
/** Microsoft Graph: a token for it is refused by IMAP, POP and SMTP (docs/providers.md). */
export const GRAPH_HOST = 'graph.microsoft.com';
export const GMAIL_SCOPE = 'https://mail.google.com/';

/**
 * Token audiences (`aud`) Exchange Online accepts: the resource URL under either host, or the
 * Exchange Online application ID that v1 tokens carry instead.
 */
export const OUTLOOK_AUDIENCES: ReadonlySet<string> = new Set([
  'https://outlook.office.com',
  'https://outlook.office365.com',
  '00000002-0000-0ff1-ce00-000000000000',
]);
/** Microsoft Graph's audiences: its URL and its application ID. */
export const GRAPH_AUDIENCES: ReadonlySet<string> = new Set([
  'https://graph.microsoft.com',
  '00000003-0000-0000-c000-000000000000',
]);

/** The Exchange Online permission each protocol needs: delegated (`scp`) and app-only (`roles`). */
export const MICROSOFT_PERMISSIONS: Readonly<
  Record<Protocol, { readonly delegated: string; readonly appOnly: string }>
> = {
  IMAP: { delegated: 'IMAP.AccessAsUser.All', appOnly: 'IMAP.AccessAsApp' },
  POP: { delegated: 'POP.AccessAsUser.All', appOnly: 'POP.AccessAsApp' },
  SMTP: { delegated: 'SMTP.Send', appOnly: 'SMTP.SendAsApp' },
};

/** Thunderbird's current public client (docs/providers.md): its redirect must be exactly this. */
export const THUNDERBIRD_CLIENT_ID = '9e5f94bc-e8a4-4e73-b8be-63364c29d753';
export const THUNDERBIRD_REDIRECT_URI = 'https://localhost';
/** Thunderbird's old client ID, still in many copied configs; Microsoft disabled it (AADSTS7000112). */
export const OLD_THUNDERBIRD_CLIENT_ID = '08162f7c-0fd2-4200-a84a-f25a4db0b584';

/** One `oauth2_scope` entry, split into its resource host and permission name. */
export interface ScopeEntry {
  readonly text: string;
  /** `outlook.office.com` for `https://outlook.office.com/IMAP.AccessAsUser.All`; undefined for a bare name. */
  readonly host?: string;
  /** The part after the resource: `IMAP.AccessAsUser.All`, `.default`, `offline_access`. */
  readonly permission: string;
}

export function parseScopes(scope: string): ScopeEntry[] {
  return scope
    .split(/\s+/)
    .filter(Boolean)
    .map((text) => {
      const url = URL.parse(text);
      if (url === null || !/^https?:$/.test(url.protocol)) return { text, permission: text };
      return {
        text,
        host: url.hostname.toLowerCase(),
        permission: url.pathname.replace(/^\/+/, ''),
      };
    });
}

/**
 * Google's device flow ("TVs and limited input devices") grants only a short list of scopes, and
 * https://mail.google.com/ is not on it: such an account can never get a token for its mail. Said
 * by `check` and at start-up; undefined for every other account.
 */
export function googleDeviceFlowProblem(account: AccountConfig): string | undefined {
  if (account.flow !== 'device' || providerFamily(account) !== 'google') return undefined;
  return (
    `[${account.name}] uses oauth2_flow = device with Google, whose device flow does not grant ` +
    `mail scopes (${GMAIL_SCOPE}): use oauth2_flow = authorization_code (a paste, or --local-server-auth)`
  );
}

/** Microsoft's or Google's rules, from the token endpoint's host, else from the scopes asked for. */
export function providerFamily(account: AccountConfig): ProviderFamily {
  const tokenHost = URL.parse(account.tokenUrl)?.hostname.toLowerCase() ?? '';
  if (MICROSOFT_LOGIN_HOSTS.has(tokenHost)) return 'microsoft';
  if (GOOGLE_LOGIN_HOSTS.has(tokenHost)) return 'google';
  const scopes = parseScopes(account.scope);
  if (
    scopes.some(
      (entry) =>
        entry.host !== undefined &&
        (OUTLOOK_RESOURCE_HOSTS.has(entry.host) || entry.host === GRAPH_HOST),
    )
  ) {
    return 'microsoft';
  }
  if (scopes.some((entry) => entry.text === GMAIL_SCOPE)) return 'google';
  return 'other';
}

/**
 * Where the provider's server for `protocol` is, for hints; personal Microsoft accounts
 * (the `consumers` tenant) submit mail through Outlook.com's SMTP host.
 */
export function providerServerHint(
  account: AccountConfig,
  protocol: Protocol,
): ServerHint | undefined {
  // Only for the provider's real endpoints: an account that merely borrows Microsoft's scope names
  // (a test or bridging identity provider) has its own servers.
  const tokenHost = URL.parse(account.tokenUrl)?.hostname.toLowerCase() ?? '';
  const family = MICROSOFT_LOGIN_HOSTS.has(tokenHost)
    ? 'microsoft'
    : GOOGLE_LOGIN_HOSTS.has(tokenHost)
      ? 'google'
      : undefined;
  if (family === undefined) return undefined;
  const name: ProviderName =
    family === 'google'
      ? 'gmail'
      : /\/consumers\//i.test(account.tokenUrl)
        ? 'outlook'
        : 'office365';
  return providerServers(name)[protocol];
}

/** `outlook.office365.com:993 with implicit TLS`. */
export function describeServerHint(hint: ServerHint): string {
  return `${hint.host}:${hint.port} with ${hint.tls === 'implicit' ? 'implicit TLS' : 'STARTTLS (server_starttls = True)'}`;
}

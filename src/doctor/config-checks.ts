/**
 * Checks that need nothing but the configuration: mistakes whose failure would otherwise only
 * show up at sign-in (a disabled client ID, a redirect the client does not allow) or as an
 * upstream refusal that does not say why (scopes for Microsoft Graph, a missing protocol scope).
 */
import type { AccountConfig, Protocol, ProxyConfig } from '../config/types.js';
import {
  GMAIL_SCOPE,
  googleDeviceFlowProblem,
  GRAPH_HOST,
  MICROSOFT_PERMISSIONS,
  OLD_THUNDERBIRD_CLIENT_ID,
  OUTLOOK_RESOURCE_HOSTS,
  parseScopes,
  providerFamily,
  THUNDERBIRD_CLIENT_ID,
  THUNDERBIRD_REDIRECT_URI,
  type ScopeEntry,
} from './provider-facts.js';
import type { CheckResult } from './report.js';

/** The protocols of the configured servers, each once, in file order. */
export function configuredProtocols(config: ProxyConfig): Protocol[] {
  return [...new Set(config.servers.map((server) => server.protocol))];
}

/** The checks `check` runs on the account's section before touching the network. */
export function configChecks(config: ProxyConfig, account: AccountConfig): CheckResult[] {
  const where = sectionRef(config, account);
  const deviceProblem = googleDeviceFlowProblem(account);
  return [
    scopeCheck(account, configuredProtocols(config), where),
    clientCheck(account, where),
    ...(deviceProblem === undefined
      ? []
      : [
          {
            status: 'fail' as const,
            title: 'flow: Google device flow has no mail scopes',
            details: [deviceProblem],
          },
        ]),
  ];
}

function sectionRef(config: ProxyConfig, account: AccountConfig): string {
  return `[${account.name}] of ${config.file}`;
}

/**
 * Whether `oauth2_scope` asks for a token every configured protocol's server will take.
 * `where` names the section and file for "fix it here" lines.
 */
export function scopeCheck(
  account: AccountConfig,
  protocols: readonly Protocol[],
  where: string,
): CheckResult {
  const scopes = parseScopes(account.scope);
  const names = protocols.join(', ');
  switch (providerFamily(account)) {
    case 'google':
      return scopes.some((entry) => entry.text === GMAIL_SCOPE)
        ? { status: 'pass', title: `scopes: ${GMAIL_SCOPE} covers ${names}` }
        : {
            status: 'fail',
            title: `scopes: ${GMAIL_SCOPE} is missing`,
            details: [
              `Gmail's IMAP, POP and SMTP servers only take tokens for ${GMAIL_SCOPE}.`,
              `Set oauth2_scope = ${GMAIL_SCOPE} in ${where}, then authorise again.`,
            ],
          };
    case 'microsoft':
      return microsoftScopeCheck(account, scopes, protocols, where);
    case 'other':
      return {
        status: 'skip',
        title: `scopes: not checked (${account.scope || 'none'} are not Microsoft's or Google's mail scopes)`,
      };
  }
}

function microsoftScopeCheck(
  account: AccountConfig,
  scopes: readonly ScopeEntry[],
  protocols: readonly Protocol[],
  where: string,
): CheckResult {
  const mailPermissions = new Set(
    Object.values(MICROSOFT_PERMISSIONS).map((permission) => permission.delegated.toLowerCase()),
  );
  // A bare permission name (no resource in front) is resolved against Microsoft Graph.
  const graph = scopes.filter(
    (entry) =>
      entry.host === GRAPH_HOST ||
      (entry.host === undefined && mailPermissions.has(entry.permission.toLowerCase())),
  );
  if (graph.length > 0) {
    return {
      status: 'fail',
      title: `scopes: ${graph.map((entry) => entry.text).join(' ')} ask${graph.length === 1 ? 's' : ''} for a Microsoft Graph token`,
      details: [
        'IMAP, POP and SMTP servers reject Graph tokens (the login fails with "authentication failed"), and a bare',
        'permission name such as IMAP.AccessAsUser.All means Graph. Use the Exchange Online resource instead, e.g.',
        `oauth2_scope = ${protocols.map((protocol) => `https://outlook.office.com/${MICROSOFT_PERMISSIONS[protocol].delegated}`).join(' ')} offline_access`,
        `in ${where}, then authorise the account again.`,
      ],
    };
  }
  const outlook = scopes.filter(
    (entry) => entry.host !== undefined && OUTLOOK_RESOURCE_HOSTS.has(entry.host),
  );
  if (outlook.some((entry) => entry.permission === '.default')) {
    return {
      status: 'pass',
      title:
        'scopes: .default asks for every Exchange Online permission the app registration grants',
    };
  }
  const granted = new Set(outlook.map((entry) => entry.permission.toLowerCase()));
  const missing = protocols.filter(
    (protocol) => !granted.has(MICROSOFT_PERMISSIONS[protocol].delegated.toLowerCase()),
  );
  if (missing.length > 0) {
    return {
      status: 'fail',
      title: `scopes: no ${missing.map((protocol) => MICROSOFT_PERMISSIONS[protocol].delegated).join(', ')} for the configured ${missing.join(', ')} server${missing.length === 1 ? '' : 's'}`,
      details: [
        `The ${missing.join(' and ')} server${missing.length === 1 ? '' : 's'} will reject the token. Add ${missing
          .map(
            (protocol) => `https://outlook.office.com/${MICROSOFT_PERMISSIONS[protocol].delegated}`,
          )
          .join(' ')} to oauth2_scope in ${where}, then authorise again.`,
      ],
    };
  }
  if (
    account.flow !== 'client_credentials' &&
    !scopes.some((entry) => entry.text === 'offline_access')
  ) {
    return {
      status: 'warn',
      title: `scopes: cover ${protocols.join(', ')}, but offline_access is missing`,
      details: [
        'Without offline_access Microsoft issues no refresh token, and the account needs authorising again every hour.',
        `Add offline_access to oauth2_scope in ${where}.`,
      ],
    };
  }
  return { status: 'pass', title: `scopes: cover ${protocols.join(', ')}` };
}

/** Client IDs and redirects Microsoft is known to refuse (docs/providers.md, public client IDs). */
export function clientCheck(account: AccountConfig, where: string): CheckResult {
  const clientId = account.clientId.toLowerCase();
  if (clientId === OLD_THUNDERBIRD_CLIENT_ID) {
    return {
      status: 'fail',
      title: `client: ${account.clientId} is Thunderbird's old client ID, which Microsoft disabled (AADSTS7000112)`,
      details: [
        'Every sign-in and refresh with it fails with "application is disabled"; re-authorising with it cannot help.',
        `Set client_id = ${THUNDERBIRD_CLIENT_ID} and redirect_uri = ${THUNDERBIRD_REDIRECT_URI} (and remove client_secret)`,
        `in ${where}, or use provider = office365; then authorise again.`,
      ],
    };
  }
  if (clientId === THUNDERBIRD_CLIENT_ID) {
    if (account.flow === 'authorization_code' && account.redirectUri !== THUNDERBIRD_REDIRECT_URI) {
      return {
        status: 'fail',
        title: `client: Thunderbird's client ID only allows redirect_uri = ${THUNDERBIRD_REDIRECT_URI}, not ${account.redirectUri}`,
        details: [
          'Signing in will fail with AADSTS50011 (the redirect URI does not match the app registration).',
          `Set redirect_uri = ${THUNDERBIRD_REDIRECT_URI} in ${where}.`,
        ],
      };
    }
    if (account.clientSecret || account.clientSecretEncrypted) {
      return {
        status: 'fail',
        title: "client: Thunderbird's client ID is a public client, but a client secret is set",
        details: [
          'Microsoft refuses secrets from public clients (AADSTS700025).',
          `Remove client_secret from ${where}.`,
        ],
      };
    }
  }
  return { status: 'pass', title: 'client: no known problem with this client_id and redirect_uri' };
}

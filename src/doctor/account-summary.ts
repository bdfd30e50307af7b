/**
 * The facts `check` prints before checking anything: which account section applies and what it
 * resolves to (presets applied), and every upstream server the account will be tried against.
 * Secrets are described, never shown.
 */
import type { ProxyConfig, ServerConfig } from '../config/types.js';
import { deviceAuthorizationEndpoint } from '../oauth/index.js';
import type { TokenSubject } from '../tokens/subject.js';

/** Label / value rows, in print order; a value with several lines continues under the first. */
export type SummaryRow = readonly [label: string, values: readonly string[]];

/**
 * The account's configuration as `check` shows it. `storedSecret`: the token store holds the
 * account's client secret encrypted (email-oauth2-proxy's cache store keeps it there).
 */
export function accountSummary(
  config: ProxyConfig,
  subject: TokenSubject,
  tokenStore: string,
  storedSecret = false,
): SummaryRow[] {
  const { account } = subject;
  const catchAll = subject.key !== account.name;
  const rows: SummaryRow[] = [
    ['Configuration', [config.file]],
    [
      'Account section',
      [`[${account.name}]${catchAll ? ` (catch-all; tokens kept under ${subject.key})` : ''}`],
    ],
    [
      'Flow',
      [
        `${account.flow}${account.flow === 'authorization_code' && account.usePkce ? ' with PKCE' : ''}`,
      ],
    ],
  ];
  const endpoints = endpointRows(subject);
  rows.push(...endpoints);
  rows.push(['Scopes', [account.scope || '(none)']]);
  if (account.flow === 'authorization_code') rows.push(['Redirect', [account.redirectUri]]);
  if (account.flow === 'service_account') {
    rows.push(['Service account', [describeServiceAccountKey(subject, storedSecret)]]);
    rows.push(['Acts as', [`${subject.loginName} (domain-wide delegation)`]]);
  } else {
    rows.push([
      'Client',
      [`${account.clientId} (${describeClientAuth(config, subject, storedSecret)})`],
    ]);
  }
  rows.push(['Token store', [`${tokenStore} [${subject.key}]`]]);
  rows.push(['Upstream servers', config.servers.map(describeServer)]);
  return rows;
}

/** Rows aligned on their labels. */
export function formatSummary(rows: readonly SummaryRow[]): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows
    .flatMap(([label, values]) =>
      values.map((value, index) => `${(index === 0 ? label : '').padEnd(width)}${value}`),
    )
    .join('\n')
    .concat('\n');
}

/** `[IMAP-1993] outlook.office365.com:993, implicit TLS`. */
export function describeServer(server: ServerConfig): string {
  const tls = server.protocol === 'SMTP' && server.serverStarttls ? 'STARTTLS' : 'implicit TLS';
  const ca = server.serverCaFile ? `, extra CA ${server.serverCaFile}` : '';
  return `[${server.section}] ${server.serverAddress}:${server.serverPort}, ${tls}${ca}`;
}

function endpointRows(subject: TokenSubject): SummaryRow[] {
  const { account } = subject;
  const unused = '(not used by this flow)';
  switch (account.flow) {
    case 'client_credentials':
    case 'password':
      return [['Token endpoint', [account.tokenUrl || unused]]];
    case 'service_account':
      return [['Token endpoint', ["token_uri in the service account's key"]]];
    case 'device':
      return [
        [
          'Device endpoint',
          [deviceEndpoint(subject) ?? `${account.permissionUrl} (cannot derive a device endpoint)`],
        ],
        ['Token endpoint', [account.tokenUrl]],
      ];
    case 'authorization_code': {
      const device = deviceEndpoint(subject);
      return [
        ['Authorization', [account.permissionUrl]],
        ['Token endpoint', [account.tokenUrl]],
        [
          'Device endpoint',
          [
            device
              ? `${device} (for oauth2_flow = device)`
              : '(none: the device flow is not available)',
          ],
        ],
      ];
    }
  }
}

function deviceEndpoint(subject: TokenSubject): string | undefined {
  try {
    return deviceAuthorizationEndpoint(subject.account);
  } catch {
    // An endpoint address the loader let through but OAuth cannot use; the refresh check says so.
    return undefined;
  }
}

/** Where the key is, never what it holds. */
function describeServiceAccountKey(subject: TokenSubject, storedSecret: boolean): string {
  const { account } = subject;
  const type = account.clientId.trim().toLowerCase();
  if (type !== 'file' && type !== 'key')
    return `client_id = ${account.clientId}: must be file or key`;
  if (account.clientSecret)
    return type === 'file'
      ? `key file ${account.clientSecret.trim()}`
      : 'key written in client_secret';
  if (account.clientSecretEncrypted || storedSecret)
    return `${type === 'file' ? 'key file path' : 'key'} stored encrypted (client_secret_encrypted)`;
  return 'no key: client_secret is empty';
}

function describeClientAuth(
  config: ProxyConfig,
  subject: TokenSubject,
  storedSecret: boolean,
): string {
  const { account } = subject;
  if (account.clientSecret) return 'confidential: client_secret is set';
  if (account.clientSecretEncrypted) return 'confidential: client_secret_encrypted is set';
  if (storedSecret) return 'confidential: client_secret_encrypted is in the token store';
  if (
    account.flow === 'client_credentials' &&
    config.options.useLoginPasswordAsClientCredentialsSecret
  ) {
    return 'confidential: the login password is the client secret';
  }
  if (account.certificateCredentials) {
    return `confidential: certificate credentials, ${account.certificateCredentials.certificatePath}`;
  }
  return 'public client, no secret';
}

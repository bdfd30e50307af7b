/**
 * What a configuration file means to the proxy, and what it says when the file is wrong. Every
 * problem stops loading with one message naming the file, the section, the key and the fix.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { findAccount } from '../../src/config/accounts.js';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { AccountConfig, ProxyConfig } from '../../src/config/types.js';

const ISSUE_EXAMPLE = `
[IMAP-1993]
server_address = outlook.office365.com
server_port = 993
local_address = 127.0.0.1

[john.smith@example.com]
permission_url = https://login.microsoftonline.com/common/oauth2/v2.0/authorize
token_url = https://login.microsoftonline.com/common/oauth2/v2.0/token
oauth2_scope = https://outlook.office365.com/IMAP.AccessAsUser.All https://outlook.office365.com/POP.AccessAsUser.All https://outlook.office365.com/SMTP.Send offline_access
redirect_uri = https://login.microsoftonline.com/common/oauth2/nativeclient
client_id = facd6cff-a294-4415-b59f-c5b01937d7bd
client_secret =
`;

const IMAP_SERVER = '[IMAP-1993]\nserver_address = outlook.office365.com\n';
const CATCH_ALLS_ON = '[emailproxy]\nallow_catch_all_accounts = True\n';

/** A complete authorization_code account; tests change one key at a time. */
const ACCOUNT_KEYS = {
  permission_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
  token_url: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
  oauth2_scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
  redirect_uri: 'https://localhost',
  client_id: '9e5f94bc-e8a4-4e73-b8be-63364c29d753',
};

/** The text of an account section: the complete one above, with `changes` applied (null removes a key). */
function accountSection(name: string, changes: Record<string, string | null> = {}): string {
  const keys: Record<string, string | null> = { ...ACCOUNT_KEYS, ...changes };
  const lines = Object.entries(keys)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([key, value]) => `${key} = ${value}`);
  return `[${name}]\n${lines.join('\n')}\n`;
}

function configErrorOf(text: string): ConfigError {
  try {
    parseConfig(text, 'my.config');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

function onlyAccount(config: ProxyConfig): AccountConfig {
  expect(config.accounts).toHaveLength(1);
  return config.accounts[0] as AccountConfig;
}

describe('the issue example', () => {
  it('loads to one loopback IMAP listener and one public-client account', () => {
    const config = parseConfig(ISSUE_EXAMPLE, 'emailproxy.config');

    expect(config.file).toBe(resolve('emailproxy.config'));
    expect(config.servers).toEqual([
      {
        section: 'IMAP-1993',
        protocol: 'IMAP',
        localPort: 1993,
        localAddress: '127.0.0.1',
        serverAddress: 'outlook.office365.com',
        serverPort: 993,
        serverStarttls: false,
        localStarttls: false,
      },
    ]);
    expect(config.accounts).toEqual([
      {
        name: 'john.smith@example.com',
        permissionUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
        tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
        scope:
          'https://outlook.office365.com/IMAP.AccessAsUser.All https://outlook.office365.com/POP.AccessAsUser.All ' +
          'https://outlook.office365.com/SMTP.Send offline_access',
        redirectUri: 'https://login.microsoftonline.com/common/oauth2/nativeclient',
        clientId: 'facd6cff-a294-4415-b59f-c5b01937d7bd',
        flow: 'authorization_code',
        usePkce: true,
      },
    ]);
    expect(config.options).toEqual({
      deleteAccountTokenOnPasswordError: false,
      encryptClientSecretOnFirstUse: false,
      allowCatchAllAccounts: false,
      useLoginPasswordAsClientCredentialsSecret: false,
      allowPlaintextNetworkLogins: false,
    });
  });

  it('treats "client_secret =" (empty) as a public client: no secret, and PKCE on', () => {
    const account = onlyAccount(parseConfig(ISSUE_EXAMPLE, 'emailproxy.config'));

    expect(account).not.toHaveProperty('clientSecret');
    expect(account.usePkce).toBe(true);
  });
});

describe('an email-oauth2-proxy configuration file', () => {
  const fixturePath = fileURLToPath(
    new URL('../fixtures/emailproxy-compat.config', import.meta.url),
  );

  it('loads with its servers, accounts, tokens and [emailproxy] options', async () => {
    const config = await loadConfig(fixturePath);

    expect(config.file).toBe(fixturePath);
    const servers = config.servers.map((server) => [
      server.section,
      server.protocol,
      server.localPort,
      server.serverAddress,
      server.serverPort,
      server.serverStarttls,
    ]);
    expect(servers).toEqual([
      ['IMAP-1993', 'IMAP', 1993, 'outlook.office365.com', 993, false],
      ['POP-1995', 'POP', 1995, 'outlook.office365.com', 995, false],
      ['SMTP-1587', 'SMTP', 1587, 'smtp.office365.com', 587, true],
    ]);
    expect(config.accounts.map((account) => account.name)).toEqual([
      'john.smith@example.co.uk',
      'legacy@example.com',
      '@example.org',
    ]);
    expect(config.options).toEqual({
      deleteAccountTokenOnPasswordError: false,
      encryptClientSecretOnFirstUse: false,
      allowCatchAllAccounts: true,
      useLoginPasswordAsClientCredentialsSecret: false,
      allowPlaintextNetworkLogins: false,
    });
  });

  it('keeps a client secret containing "#", ";" and "=" whole, and turns PKCE off for that confidential client', async () => {
    const john = (await loadConfig(fixturePath)).accounts[0];

    expect(john?.clientSecret).toBe('s3cr#t;value=with=equals');
    expect(john?.usePkce).toBe(false);
  });

  it('hands token fields found in account sections over as tokensInConfig, still encrypted', async () => {
    const [john, legacy, catchAll] = (await loadConfig(fixturePath)).accounts;

    expect(john?.tokensInConfig).toEqual({
      token_salt: 'EBESExQVFhcYGRobHB0eHw==',
      token_iterations: '1200000',
      access_token: expect.stringMatching(/^gAAAAA/),
      access_token_expiry: '1893456000',
      refresh_token: expect.stringMatching(/^gAAAAA/),
      last_activity: '1893369600',
    });
    expect(legacy?.tokensInConfig).not.toHaveProperty('token_iterations');
    expect(catchAll?.tokensInConfig).toBeUndefined();
  });
});

describe('defaults', () => {
  it('listens on 127.0.0.1 and connects to the standard port of each protocol when not told otherwise', () => {
    const config = parseConfig(
      '[IMAP-1993]\nserver_address = i\n[pop-1995]\nserver_address = p\n[Smtp-1587]\nserver_address = s\n',
      'my.config',
    );

    const servers = config.servers.map((server) => [
      server.section,
      server.protocol,
      server.localAddress,
      server.serverPort,
    ]);
    expect(servers).toEqual([
      ['IMAP-1993', 'IMAP', '127.0.0.1', 993],
      ['pop-1995', 'POP', '127.0.0.1', 995],
      ['Smtp-1587', 'SMTP', '127.0.0.1', 587],
    ]);
  });

  it('reads the load balancers allowed to send PROXY headers, addresses and ranges', () => {
    const config = parseConfig(
      `${IMAP_SERVER}proxy_protocol_from = 10.0.0.5, 10.0.1.0/24,fd00::/8 ,\n`,
      'my.config',
    );
    expect(config.servers[0]!.proxyProtocolFrom).toEqual(['10.0.0.5', '10.0.1.0/24', 'fd00::/8']);
    expect(parseConfig(IMAP_SERVER, 'my.config').servers[0]!.proxyProtocolFrom).toBeUndefined();
  });

  it('reads metrics_address from [emailproxy], the host defaulting to loopback', () => {
    const at = (value: string) =>
      parseConfig(`${IMAP_SERVER}[emailproxy]\nmetrics_address = ${value}\n`, 'my.config').options
        .metricsAddress;
    expect(at('9431')).toEqual({ host: '127.0.0.1', port: 9431 });
    expect(at('[::1]:9431')).toEqual({ host: '::1', port: 9431 });
    expect(parseConfig(IMAP_SERVER, 'my.config').options.metricsAddress).toBeUndefined();
    expect(() => at('localhost:99999')).toThrow(
      'my.config: section [emailproxy], key metrics_address: "localhost:99999" is not [HOST:]PORT, e.g. 127.0.0.1:9431',
    );
  });

  it('reads cache_store from [emailproxy]: a path beside the config, or a PostgreSQL URL', () => {
    const store = (value: string) =>
      parseConfig(`${IMAP_SERVER}[emailproxy]\ncache_store = ${value}\n`, '/etc/proxy/my.config')
        .options.cacheStore;
    expect(store('tokens.ini')).toBe('/etc/proxy/tokens.ini');
    expect(store('/var/lib/t.ini')).toBe('/var/lib/t.ini');
    expect(store('postgresql://proxy@db/tokens?sslmode=verify-full')).toBe(
      'postgresql://proxy@db/tokens?sslmode=verify-full',
    );
    expect(() => store('aws:my-secret')).toThrow(
      /key cache_store: "aws" stores are not supported .*use a file path or a postgresql:\/\/ URL/,
    );
  });

  it('takes [DEFAULT] values for every section, as configparser does', () => {
    const config = parseConfig(`[DEFAULT]\nlocal_address = ::1\n${IMAP_SERVER}`, 'my.config');

    expect(config.servers[0]?.localAddress).toBe('::1');
  });

  it('reads the legacy "starttls" spelling of server_starttls', () => {
    const config = parseConfig(
      '[SMTP-1587]\nserver_address = smtp.office365.com\nstarttls = True\n',
      'my.config',
    );

    expect(config.servers[0]?.serverStarttls).toBe(true);
  });

  it('resolves certificate paths against the configuration file directory', () => {
    const config = parseConfig(
      '[IMAP-1993]\nserver_address = i\nlocal_starttls = yes\nlocal_certificate_path = certs/cert.pem\n' +
        'local_key_path = /etc/proxy/key.pem\n',
      '/etc/proxy/my.config',
    );

    expect(config.servers[0]).toMatchObject({
      localStarttls: true,
      localCertificatePath: '/etc/proxy/certs/cert.pem',
      localKeyPath: '/etc/proxy/key.pem',
    });
  });

  it('resolves a service account key file against the configuration file directory, and leaves an inline key alone', () => {
    const serviceAccount = (name: string, clientId: string, secret: string): string =>
      `[${name}]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = ${clientId}\nclient_secret = ${secret}\n`;
    const config = parseConfig(
      IMAP_SERVER +
        serviceAccount('a@example.com', 'file', 'keys/sa.json') +
        serviceAccount('b@example.com', 'File', '/srv/sa.json') +
        serviceAccount('c@example.com', 'key', 'keys/sa.json'),
      '/etc/proxy/my.config',
    );

    expect(config.accounts.map((account) => account.clientSecret)).toEqual([
      '/etc/proxy/keys/sa.json',
      '/srv/sa.json',
      'keys/sa.json',
    ]);
  });

  it('uses the authorization_code flow, and PKCE only for clients without a secret unless use_pkce says so', () => {
    const config = parseConfig(
      IMAP_SERVER +
        accountSection('public@example.com') +
        accountSection('confidential@example.com', { client_secret: 's' }) +
        accountSection('encrypted@example.com', { client_secret_encrypted: 'gAAAAAB' }) +
        accountSection('forced@example.com', { client_secret: 's', use_pkce: 'True' }) +
        accountSection('refused@example.com', { use_pkce: 'off' }),
      'my.config',
    );

    expect(config.accounts.map((account) => [account.name, account.flow, account.usePkce])).toEqual(
      [
        ['public@example.com', 'authorization_code', true],
        ['confidential@example.com', 'authorization_code', false],
        ['encrypted@example.com', 'authorization_code', false],
        ['forced@example.com', 'authorization_code', true],
        ['refused@example.com', 'authorization_code', false],
      ],
    );
  });

  it('collapses a scope continued over several lines into one space-separated list', () => {
    const text =
      IMAP_SERVER +
      accountSection('a@example.com', {
        oauth2_scope: 'https://mail.google.com/\n    offline_access',
      });

    expect(onlyAccount(parseConfig(text, 'my.config')).scope).toBe(
      'https://mail.google.com/ offline_access',
    );
  });

  it('ignores sections it does not know and keys it does not know in sections it does', () => {
    const text =
      '[Server setup]\ndocumentation = free text\n[IMAP-1993]\nserver_address = i\nunknown_key = x\n' +
      accountSection('a@example.com', { plugin_option: 'x' });

    expect(parseConfig(text, 'my.config').accounts).toHaveLength(1);
  });

  it('needs only the keys the chosen flow uses', () => {
    const config = parseConfig(
      IMAP_SERVER +
        '[device@example.com]\noauth2_flow = device\n' +
        'permission_url = https://login.microsoftonline.com/common/oauth2/v2.0/devicecode\n' +
        `token_url = ${ACCOUNT_KEYS.token_url}\noauth2_scope = s\nclient_id = c\n` +
        `[app@example.com]\noauth2_flow = client_credentials\ntoken_url = ${ACCOUNT_KEYS.token_url}\n` +
        'oauth2_scope = https://outlook.office365.com/.default\nclient_id = c\nclient_secret = s\n' +
        `[ropc@example.com]\noauth2_flow = password\ntoken_url = ${ACCOUNT_KEYS.token_url}\noauth2_scope = s\nclient_id = c\n` +
        '[robot@example.com]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\n' +
        'client_id = file\nclient_secret = /etc/proxy/service-account.json\n',
      'my.config',
    );

    expect(
      config.accounts.map((account) => [account.name, account.flow, account.redirectUri]),
    ).toEqual([
      ['device@example.com', 'device', ''],
      ['app@example.com', 'client_credentials', ''],
      ['ropc@example.com', 'password', ''],
      ['robot@example.com', 'service_account', ''],
    ]);
  });

  it('lets the login password stand in for a client_credentials secret when the option says so', () => {
    const text =
      IMAP_SERVER +
      `[emailproxy]\nuse_login_password_as_client_credentials_secret = on\n` +
      `[app@example.com]\noauth2_flow = client_credentials\ntoken_url = ${ACCOUNT_KEYS.token_url}\noauth2_scope = s\nclient_id = c\n`;

    expect(onlyAccount(parseConfig(text, 'my.config')).clientSecret).toBeUndefined();
  });

  it.each([
    'http://127.0.0.1:8080/token',
    'http://127.9.9.9/token',
    'http://localhost:9000/token',
    'http://[::1]/token',
  ])('allows plain http for a loopback token endpoint (%s), as test providers use', (tokenUrl) => {
    const text = IMAP_SERVER + accountSection('a@example.com', { token_url: tokenUrl });

    expect(onlyAccount(parseConfig(text, 'my.config')).tokenUrl).toBe(tokenUrl);
  });
});

describe('configuration errors', () => {
  it.each([
    // Servers
    {
      what: 'a server port that is not a number',
      text: '[IMAP-1993]\nserver_address = outlook.office365.com\nserver_port = 99x\n',
      message:
        'my.config: section [IMAP-1993], key server_port: "99x" is not a port number (1-65535)',
    },
    {
      what: 'a server port out of range',
      text: '[IMAP-1993]\nserver_address = outlook.office365.com\nserver_port = 65536\n',
      message:
        'my.config: section [IMAP-1993], key server_port: "65536" is not a port number (1-65535)',
    },
    {
      what: 'a local port out of range in the section name',
      text: '[IMAP-0]\nserver_address = outlook.office365.com\n',
      message:
        'my.config: section [IMAP-0]: "0" is not a port number (1-65535); name server sections PROTOCOL-LOCALPORT, e.g. [IMAP-1993]',
    },
    {
      what: 'a server section name without a port',
      text: '[SMTP-submission]\nserver_address = smtp.office365.com\n',
      message:
        'my.config: section [SMTP-submission]: "submission" is not a port number (1-65535); name server sections ' +
        'PROTOCOL-LOCALPORT, e.g. [IMAP-1993]',
    },
    {
      what: 'a server without server_address',
      text: '[IMAP-1993]\nserver_port = 993\n',
      message:
        "my.config: section [IMAP-1993], key server_address: missing; set it to the mail server's host name, e.g. outlook.office365.com",
    },
    {
      what: 'an empty server_address',
      text: '[IMAP-1993]\nserver_address =\n',
      message:
        "my.config: section [IMAP-1993], key server_address: missing; set it to the mail server's host name, e.g. outlook.office365.com",
    },
    {
      what: 'STARTTLS asked of an IMAP upstream',
      text: `${IMAP_SERVER}server_starttls = True\n`,
      message:
        'my.config: section [IMAP-1993], key server_starttls: only SMTP upstreams are upgraded with STARTTLS ' +
        '(IMAP connects with implicit TLS); remove it',
    },
    {
      what: 'starttls and server_starttls disagreeing',
      text: '[SMTP-1587]\nserver_address = s\nserver_starttls = True\nstarttls = False\n',
      message:
        'my.config: section [SMTP-1587], key starttls: contradicts server_starttls (starttls is its old name); remove starttls',
    },
    {
      what: 'a boolean that is not one',
      text: '[SMTP-1587]\nserver_address = s\nserver_starttls = sure\n',
      message:
        'my.config: section [SMTP-1587], key server_starttls: "sure" is not a boolean; use True or False (or yes/no, on/off, 1/0)',
    },
    {
      what: 'a certificate without its key',
      text: `${IMAP_SERVER}local_certificate_path = cert.pem\n`,
      message:
        'my.config: section [IMAP-1993], key local_certificate_path: set without local_key_path; set both ' +
        '(the certificate and its private key) or neither',
    },
    {
      what: 'a key without its certificate',
      text: `${IMAP_SERVER}local_key_path = key.pem\n`,
      message:
        'my.config: section [IMAP-1993], key local_key_path: set without local_certificate_path; set both ' +
        '(the certificate and its private key) or neither',
    },
    {
      what: 'local STARTTLS without a certificate',
      text: `${IMAP_SERVER}local_starttls = True\n`,
      message:
        'my.config: section [IMAP-1993], key local_starttls: needs local_certificate_path and local_key_path ' +
        '(the certificate and key offered to local clients); set both or turn local_starttls off',
    },
    {
      what: 'a load balancer that is not an address',
      text: `${IMAP_SERVER}proxy_protocol_from = 10.0.0.5, haproxy.local\n`,
      message:
        'my.config: section [IMAP-1993], key proxy_protocol_from: "haproxy.local" is not an IP address or ' +
        'CIDR range (e.g. 10.0.0.5, 10.0.0.0/24, fd00::/8)',
    },
    {
      what: 'a range wider than its family',
      text: `${IMAP_SERVER}proxy_protocol_from = 10.0.0.0/33\n`,
      message:
        'my.config: section [IMAP-1993], key proxy_protocol_from: "10.0.0.0/33" is not an IP address or ' +
        'CIDR range (e.g. 10.0.0.5, 10.0.0.0/24, fd00::/8)',
    },
    {
      what: 'no server section at all',
      text: accountSection('a@example.com'),
      message:
        'my.config: no server sections, so there is nothing to listen on; add one named after its protocol and ' +
        'local port, e.g. [IMAP-1993] with server_address = outlook.office365.com',
    },
    {
      what: 'two servers on the same local port',
      text: '[IMAP-1993]\nserver_address = i\n[SMTP-1993]\nserver_address = s\n',
      message:
        'my.config: section [SMTP-1993]: local port 1993 is already used by [IMAP-1993]; give each server section its own port',
    },
    // Options
    {
      what: 'an [emailproxy] option that is not a boolean',
      text: `${IMAP_SERVER}[emailproxy]\ndelete_account_token_on_password_error = maybe\n`,
      message:
        'my.config: section [emailproxy], key delete_account_token_on_password_error: "maybe" is not a boolean; ' +
        'use True or False (or yes/no, on/off, 1/0)',
    },
    // Accounts
    {
      what: 'an unknown oauth2_flow',
      text: IMAP_SERVER + accountSection('a@example.com', { oauth2_flow: 'implicit' }),
      message:
        'my.config: section [a@example.com], key oauth2_flow: "implicit" is not a supported flow; use one of ' +
        'authorization_code, device, client_credentials, password, service_account',
    },
    {
      what: 'an authorization_code account without token_url',
      text: IMAP_SERVER + accountSection('a@example.com', { token_url: null }),
      message:
        'my.config: section [a@example.com], key token_url: missing, and the authorization_code flow needs it; ' +
        "set it to the provider's token endpoint, e.g. https://login.microsoftonline.com/common/oauth2/v2.0/token",
    },
    {
      what: 'an authorization_code account without redirect_uri',
      text: IMAP_SERVER + accountSection('a@example.com', { redirect_uri: '' }),
      message:
        'my.config: section [a@example.com], key redirect_uri: missing, and the authorization_code flow needs it; ' +
        'set it to the address the provider sends the browser back to after sign-in, e.g. https://localhost',
    },
    {
      what: 'an account without client_id',
      text: IMAP_SERVER + accountSection('a@example.com', { client_id: null }),
      message:
        'my.config: section [a@example.com], key client_id: missing, and the authorization_code flow needs it; ' +
        'set it to the application (client) ID registered with the provider',
    },
    {
      what: 'an account without oauth2_scope',
      text: IMAP_SERVER + accountSection('a@example.com', { oauth2_scope: null }),
      message:
        'my.config: section [a@example.com], key oauth2_scope: missing, and the authorization_code flow needs it; ' +
        'set it to the space-separated scopes to request, e.g. https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    },
    {
      what: 'a device-flow account without its device endpoint',
      text:
        IMAP_SERVER +
        accountSection('a@example.com', { oauth2_flow: 'device', permission_url: null }),
      message:
        'my.config: section [a@example.com], key permission_url: missing, and the device flow needs it; set it to ' +
        "the provider's device authorization endpoint, e.g. https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
    },
    {
      what: 'a client_credentials account without a secret',
      text: IMAP_SERVER + accountSection('a@example.com', { oauth2_flow: 'client_credentials' }),
      message:
        'my.config: section [a@example.com], key client_secret: missing, and the client_credentials flow needs it; ' +
        "set it to the application's client secret (or set jwt_certificate_path and jwt_key_path for certificate credentials, or use_login_password_as_client_credentials_secret = True in [emailproxy])",
    },
    {
      what: 'a token_url over plain http to a remote host',
      text:
        IMAP_SERVER +
        accountSection('a@example.com', { token_url: 'http://login.example.com/token' }),
      message:
        'my.config: section [a@example.com], key token_url: "http://login.example.com/token" must use https:// ' +
        '(plain http is only allowed for loopback hosts: 127.0.0.0/8, ::1, localhost); tokens and secrets travel over this connection',
    },
    {
      what: 'a permission_url over plain http to a remote host',
      text:
        IMAP_SERVER +
        accountSection('a@example.com', { permission_url: 'http://10.0.0.1/authorize' }),
      message:
        'my.config: section [a@example.com], key permission_url: "http://10.0.0.1/authorize" must use https:// ' +
        '(plain http is only allowed for loopback hosts: 127.0.0.0/8, ::1, localhost); tokens and secrets travel over this connection',
    },
    {
      what: 'a URL that does not parse',
      text:
        IMAP_SERVER +
        accountSection('a@example.com', { token_url: 'login.microsoftonline.com/common' }),
      message:
        'my.config: section [a@example.com], key token_url: "login.microsoftonline.com/common" is not a URL; ' +
        'write it in full, starting with https://',
    },
    {
      what: 'a redirect_uri that is not http(s)',
      text:
        IMAP_SERVER +
        accountSection('a@example.com', { redirect_uri: 'urn:ietf:wg:oauth:2.0:oob' }),
      message:
        'my.config: section [a@example.com], key redirect_uri: "urn:ietf:wg:oauth:2.0:oob" is not an http(s) URL; ' +
        'write it in full, starting with https://',
    },
    {
      what: 'a domain catch-all without allow_catch_all_accounts',
      text: IMAP_SERVER + accountSection('@example.com'),
      message:
        'my.config: section [@example.com]: catch-all account sections need allow_catch_all_accounts = True in ' +
        '[emailproxy]; set that option or name the section after a full email address',
    },
    {
      what: 'the [@] catch-all without allow_catch_all_accounts',
      text: `${IMAP_SERVER}[emailproxy]\nallow_catch_all_accounts = False\n${accountSection('@')}`,
      message:
        'my.config: section [@]: catch-all account sections need allow_catch_all_accounts = True in ' +
        '[emailproxy]; set that option or name the section after a full email address',
    },
    {
      what: 'two account sections differing only in case',
      text:
        IMAP_SERVER +
        CATCH_ALLS_ON +
        accountSection('John@Example.com') +
        accountSection('john@example.com'),
      message:
        'my.config: section [john@example.com]: same account as [John@Example.com] (login names are matched ' +
        'ignoring case); merge the two sections',
    },
    // Syntax errors come from the INI reader, with the line number.
    {
      what: 'a duplicate key',
      text: `${IMAP_SERVER}server_address = again\n`,
      message:
        'my.config:3: section [IMAP-1993], key server_address: key set twice in this section; keep only one of them',
    },
  ])('rejects $what', ({ text, message }) => {
    const error = configErrorOf(text);

    expect(error.message).toBe(message);
  });

  it('fills in the structured fields as well as the message', () => {
    const error = configErrorOf(
      '[IMAP-1993]\nserver_address = outlook.office365.com\nserver_port = 99x\n',
    );

    expect(error).toMatchObject({
      name: 'ConfigError',
      code: 'ERR_CONFIG',
      file: 'my.config',
      section: 'IMAP-1993',
      key: 'server_port',
      line: undefined,
      problem: '"99x" is not a port number (1-65535)',
    });
  });

  it('never repeats a client secret in a message', () => {
    const error = configErrorOf(
      IMAP_SERVER +
        accountSection('a@example.com', { client_secret: 'very-secret', token_url: 'nope' }),
    );

    expect(error.message).not.toContain('very-secret');
  });
});

describe('loadConfig', () => {
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'config-load-'));
  });

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('says so when the file does not exist, naming the path as given', async () => {
    const path = join(directory, 'missing.config');

    await expect(loadConfig(path)).rejects.toThrow(
      new ConfigError({
        file: path,
        problem:
          'cannot read the configuration file: it does not exist; check the path or create the file',
      }),
    );
    await expect(loadConfig(path)).rejects.toBeInstanceOf(ConfigError);
  });

  it('says so when the path is a directory', async () => {
    await expect(loadConfig(directory)).rejects.toThrow(
      `${directory}: cannot read the configuration file: it is a directory; give the path of the file itself`,
    );
  });

  it('refuses a file that is not UTF-8 text', async () => {
    const path = join(directory, 'latin1.config');
    await writeFile(path, Buffer.from('[IMAP-1993]\nserver_address = caf\xe9\n', 'latin1'));

    await expect(loadConfig(path)).rejects.toThrow(
      `${path}: not UTF-8 text; save the file as UTF-8`,
    );
  });

  it('reads a file and records its absolute path', async () => {
    const path = join(directory, 'ok.config');
    await writeFile(path, ISSUE_EXAMPLE);

    const config = await loadConfig(path);

    expect(config.file).toBe(path);
    expect(config.accounts[0]?.name).toBe('john.smith@example.com');
  });
});

describe('findAccount', () => {
  const config = parseConfig(
    IMAP_SERVER +
      CATCH_ALLS_ON +
      accountSection('John.Smith@Example.com', { client_id: 'exact' }) +
      accountSection('@example.com', { client_id: 'domain' }) +
      accountSection('@', { client_id: 'everyone' }),
    'my.config',
  );
  const clientIdFor = (username: string) => findAccount(config, username)?.clientId;

  it('prefers the section named after the login, ignoring case', () => {
    expect(clientIdFor('john.smith@example.com')).toBe('exact');
    expect(clientIdFor('JOHN.SMITH@EXAMPLE.COM')).toBe('exact');
  });

  it('falls back to the catch-all for the login domain, ignoring case', () => {
    expect(clientIdFor('jane@example.com')).toBe('domain');
    expect(clientIdFor('jane@EXAMPLE.com')).toBe('domain');
  });

  it('falls back to [@] for any other login, including one without a domain', () => {
    expect(clientIdFor('someone@elsewhere.org')).toBe('everyone');
    expect(clientIdFor('jane')).toBe('everyone');
    expect(clientIdFor('jane@sub.example.com')).toBe('everyone');
  });

  it('returns the catch-all section itself, whose name starts with "@"', () => {
    expect(findAccount(config, 'jane@example.com')?.name).toBe('@example.com');
  });

  it('finds only exact sections when catch-alls are off', () => {
    const exactOnly = parseConfig(IMAP_SERVER + accountSection('john@example.com'), 'my.config');

    expect(findAccount(exactOnly, 'JOHN@example.com')?.name).toBe('john@example.com');
    expect(findAccount(exactOnly, 'jane@example.com')).toBeUndefined();
  });

  it('finds nothing for an unknown login when there is no [@]', () => {
    const domainOnly = parseConfig(
      IMAP_SERVER + CATCH_ALLS_ON + accountSection('@example.com'),
      'my.config',
    );

    expect(findAccount(domainOnly, 'jane@example.org')).toBeUndefined();
  });
});

describe('listening beyond this machine', () => {
  const section = (address: string, extra = ''): string =>
    `[IMAP-1993]\nserver_address = outlook.office365.com\nlocal_address = ${address}\n${extra}`;

  it('refuses a plaintext listener reachable from other machines, saying what to do', () => {
    expect(() => parseConfig(section('0.0.0.0'), 'my.config')).toThrow(
      'my.config: section [IMAP-1993], key local_address: 0.0.0.0 is reachable from other machines, and without TLS ' +
        'mail passwords would cross the network in clear text; set local_certificate_path and local_key_path, listen on ' +
        '127.0.0.1, or (on a network you trust) set allow_plaintext_network_logins = True in [emailproxy]',
    );
  });

  it('accepts loopback in every spelling, TLS listeners, and the explicit opt-in', () => {
    for (const address of ['127.0.0.1', '127.0.0.53', 'localhost', '::1']) {
      expect(parseConfig(section(address), 'my.config').servers[0]?.localAddress).toBe(address);
    }
    expect(
      parseConfig(
        section('0.0.0.0', 'local_certificate_path = c.pem\nlocal_key_path = k.pem'),
        'my.config',
      ).servers,
    ).toHaveLength(1);
    const optIn = parseConfig(
      `${section('192.168.1.5')}\n[emailproxy]\nallow_plaintext_network_logins = True\n`,
      'my.config',
    );
    expect(optIn.options.allowPlaintextNetworkLogins).toBe(true);
  });
});

/**
 * `provider = office365 | outlook | gmail`: what an account section with a preset loads to, that
 * written keys win over the preset, and what the user is told when a preset cannot help.
 */

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { PROVIDER_NAMES, providerServers } from '../../src/config/providers.js';
import type { AccountConfig } from '../../src/config/types.js';
import { deviceAuthorizationEndpoint } from '../../src/oauth/provider-client.js';

const IMAP_SERVER = '[IMAP-1993]\nserver_address = outlook.office365.com\n';

const MICROSOFT_SCOPE =
  'https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All ' +
  'https://outlook.office.com/SMTP.Send offline_access';
const THUNDERBIRD_CLIENT_ID = '9e5f94bc-e8a4-4e73-b8be-63364c29d753';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const GOOGLE_CLIENT_ID = '1234-abc.apps.googleusercontent.com';

/** Loads one account section (its body as lines) next to an IMAP server section. */
function loadAccount(body: string, name = 'me@example.com'): AccountConfig {
  const config = parseConfig(`${IMAP_SERVER}[${name}]\n${body}\n`, 'my.config');
  expect(config.accounts).toHaveLength(1);
  return config.accounts[0] as AccountConfig;
}

function errorLoading(body: string): ConfigError {
  try {
    loadAccount(body);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

describe('provider = office365', () => {
  it('is a complete account on its own: common endpoints, mail scopes, Thunderbird client, https://localhost', () => {
    const config = parseConfig(
      `${IMAP_SERVER}[me@example.com]\nprovider = office365\n`,
      'my.config',
    );

    expect(config.accounts).toEqual([
      {
        name: 'me@example.com',
        permissionUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
        tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
        scope: MICROSOFT_SCOPE,
        redirectUri: 'https://localhost',
        clientId: THUNDERBIRD_CLIENT_ID,
        flow: 'authorization_code',
        usePkce: true,
      },
    ]);
  });

  it('loads to the same account as the fully spelled-out email-oauth2-proxy form', () => {
    const spelledOut = loadAccount(
      [
        'permission_url = https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
        'token_url = https://login.microsoftonline.com/common/oauth2/v2.0/token',
        `oauth2_scope = ${MICROSOFT_SCOPE}`,
        'redirect_uri = https://localhost',
        `client_id = ${THUNDERBIRD_CLIENT_ID}`,
        'client_secret =',
      ].join('\n'),
    );

    expect(loadAccount('provider = office365')).toEqual(spelledOut);
  });

  it('builds both endpoints for the tenant given by tenant = (GUID, domain or organizations)', () => {
    for (const tenant of [TENANT_ID, 'contoso.onmicrosoft.com', 'organizations']) {
      const account = loadAccount(`provider = office365\ntenant = ${tenant}`);

      expect([account.permissionUrl, account.tokenUrl]).toEqual([
        `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/authorize`,
        `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token`,
      ]);
    }
  });

  it('starts the device flow at the devicecode endpoint of the same tenant', () => {
    const common = loadAccount('provider = office365\noauth2_flow = device');
    const tenanted = loadAccount(
      `provider = office365\noauth2_flow = device\ntenant = ${TENANT_ID}`,
    );

    expect(common.flow).toBe('device');
    expect(deviceAuthorizationEndpoint(common)).toBe(
      'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    );
    expect(deviceAuthorizationEndpoint(tenanted)).toBe(
      `https://login.microsoftonline.com/${TENANT_ID}/oauth2/v2.0/devicecode`,
    );
  });

  it('uses the tenant, the .default scope and your own app for client credentials', () => {
    const account = loadAccount(
      `provider = office365\noauth2_flow = client_credentials\ntenant = ${TENANT_ID}\n` +
        'client_id = 00000000-1111-2222-3333-444444444444\nclient_secret = app-secret',
    );

    expect(account).toEqual({
      name: 'me@example.com',
      permissionUrl: `https://login.microsoftonline.com/${TENANT_ID}/oauth2/v2.0/authorize`,
      tokenUrl: `https://login.microsoftonline.com/${TENANT_ID}/oauth2/v2.0/token`,
      scope: 'https://outlook.office365.com/.default',
      redirectUri: '',
      clientId: '00000000-1111-2222-3333-444444444444',
      clientSecret: 'app-secret',
      flow: 'client_credentials',
      usePkce: false,
    });
  });

  it('asks for a tenant, and for your own client ID, before client credentials can work', () => {
    const noTenant =
      'provider = office365\noauth2_flow = client_credentials\nclient_id = x\nclient_secret = s';
    const noClient = `provider = office365\noauth2_flow = client_credentials\ntenant = ${TENANT_ID}\nclient_secret = s`;
    const commonTenant = `${noTenant}\ntenant = common`;

    expect(errorLoading(noTenant).message).toBe(
      'my.config: section [me@example.com], key token_url: missing; the client_credentials flow cannot use the ' +
        'common endpoint: set tenant to your directory (tenant) ID so provider = office365 can build it, or set ' +
        'token_url to https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token',
    );
    expect(errorLoading(commonTenant).message).toBe(
      'my.config: section [me@example.com], key tenant: "common" is not one organisation, and the ' +
        'client_credentials flow needs one; set tenant to your directory (tenant) ID or verified domain',
    );
    const missingClient = errorLoading(noClient);
    expect(missingClient.key).toBe('client_id');
    expect(missingClient.problem).toMatch(
      /^missing; the client_credentials flow needs your own app registration/,
    );
    expect(missingClient.problem).toContain('IMAP.AccessAsApp');
  });
});

describe('provider = outlook', () => {
  it('is office365 in the consumers tenant', () => {
    expect(loadAccount('provider = outlook')).toEqual({
      name: 'me@example.com',
      permissionUrl: 'https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize',
      tokenUrl: 'https://login.microsoftonline.com/consumers/oauth2/v2.0/token',
      scope: MICROSOFT_SCOPE,
      redirectUri: 'https://localhost',
      clientId: THUNDERBIRD_CLIENT_ID,
      flow: 'authorization_code',
      usePkce: true,
    });
  });

  it('derives the consumers devicecode endpoint for the device flow', () => {
    const account = loadAccount('provider = outlook\noauth2_flow = device');

    expect(deviceAuthorizationEndpoint(account)).toBe(
      'https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode',
    );
  });

  it('refuses flows personal accounts cannot use, naming the ones they can', () => {
    expect(errorLoading('provider = outlook\noauth2_flow = client_credentials').message).toBe(
      'my.config: section [me@example.com], key oauth2_flow: "client_credentials" does not work with ' +
        'provider = outlook (personal Microsoft accounts have no app-only access); use authorization_code, device',
    );
  });
});

describe('provider = gmail', () => {
  it("fills Google's endpoints, the mail scope and the loopback redirect around your own client", () => {
    const account = loadAccount(
      `provider = gmail\nclient_id = ${GOOGLE_CLIENT_ID}\nclient_secret = GOCSPX-desktop`,
    );

    expect(account).toEqual({
      name: 'me@example.com',
      permissionUrl: 'https://accounts.google.com/o/oauth2/auth',
      tokenUrl: 'https://oauth2.googleapis.com/token',
      scope: 'https://mail.google.com/',
      redirectUri: 'http://localhost',
      clientId: GOOGLE_CLIENT_ID,
      clientSecret: 'GOCSPX-desktop',
      flow: 'authorization_code',
      usePkce: false,
    });
  });

  it('explains how to get a client ID and secret when either is missing', () => {
    const expectedAdvice =
      'missing; provider = gmail needs your own OAuth client, because Google offers no public client that ' +
      'everyone may use: in Google Cloud Console (APIs & Services > Credentials) create an OAuth client ID of ' +
      'type "Desktop app", then set client_id and client_secret to its ID and secret (a desktop app\'s secret ' +
      'is not confidential); publish the app ("In production"), or its refresh tokens expire after 7 days';

    const noClientId = errorLoading('provider = gmail\nclient_secret = s');
    const noSecret = errorLoading(`provider = gmail\nclient_id = ${GOOGLE_CLIENT_ID}`);

    expect([noClientId.key, noClientId.problem]).toEqual(['client_id', expectedAdvice]);
    expect([noSecret.key, noSecret.problem]).toEqual(['client_secret', expectedAdvice]);
    expect(noSecret.message).toBe(
      `my.config: section [me@example.com], key client_secret: ${expectedAdvice}`,
    );
  });

  it('accepts an encrypted client secret in place of client_secret', () => {
    const account = loadAccount(
      `provider = gmail\nclient_id = ${GOOGLE_CLIENT_ID}\nclient_secret_encrypted = gAAAAAencrypted`,
    );

    expect(account.clientSecretEncrypted).toBe('gAAAAAencrypted');
    expect(account).not.toHaveProperty('clientSecret');
  });

  it("refuses the device flow, which Google's device endpoint rejects for the Gmail scope", () => {
    const error = errorLoading(
      `provider = gmail\noauth2_flow = device\nclient_id = ${GOOGLE_CLIENT_ID}`,
    );

    expect(error.message).toBe(
      'my.config: section [me@example.com], key oauth2_flow: "device" does not work with provider = gmail ' +
        "(Google's device flow does not allow the Gmail scope); use authorization_code, service_account",
    );
  });

  it('refuses a tenant, which only Microsoft has', () => {
    const error = errorLoading(
      `provider = gmail\ntenant = common\nclient_id = ${GOOGLE_CLIENT_ID}\nclient_secret = s`,
    );

    expect(error.message).toBe(
      'my.config: section [me@example.com], key tenant: is a Microsoft setting and means nothing with ' +
        'provider = gmail; remove it',
    );
  });
});

describe('keys written in the section win over the preset', () => {
  const overrides = [
    [
      'permission_url',
      'https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize',
      'permissionUrl',
    ],
    ['token_url', 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token', 'tokenUrl'],
    ['oauth2_scope', 'https://outlook.office365.com/IMAP.AccessAsUser.All offline_access', 'scope'],
    ['redirect_uri', 'https://login.microsoftonline.com/common/oauth2/nativeclient', 'redirectUri'],
    ['client_id', 'facd6cff-a294-4415-b59f-c5b01937d7bd', 'clientId'],
  ] as const;

  it.each(overrides)('%s', (key, value, field) => {
    const preset = loadAccount('provider = office365');
    const overridden = loadAccount(`provider = office365\n${key} = ${value}`);

    expect(overridden).toEqual({ ...preset, [field]: value });
  });

  it('lets a client secret turn the preset into a confidential client (PKCE default follows)', () => {
    const account = loadAccount('provider = office365\nclient_id = my-app\nclient_secret = s3cret');

    expect([account.clientId, account.clientSecret, account.usePkce]).toEqual([
      'my-app',
      's3cret',
      false,
    ]);
  });

  it('treats an empty value as not written, so the preset still fills it', () => {
    expect(loadAccount('provider = office365\nclient_id =\nredirect_uri =')).toEqual(
      loadAccount('provider = office365'),
    );
  });

  it('keeps the tenant for the endpoint that is not written', () => {
    const account = loadAccount(
      `provider = office365\ntenant = ${TENANT_ID}\ntoken_url = https://login.example.net/${TENANT_ID}/token`,
    );

    expect(account.permissionUrl).toBe(
      `https://login.microsoftonline.com/${TENANT_ID}/oauth2/v2.0/authorize`,
    );
    expect(account.tokenUrl).toBe(`https://login.example.net/${TENANT_ID}/token`);
  });

  it('takes provider from [DEFAULT] for every account, as configparser inherits it', () => {
    const config = parseConfig(
      `[DEFAULT]\nprovider = office365\n${IMAP_SERVER}[a@example.com]\n[b@example.com]\nclient_id = other\n`,
      'my.config',
    );

    expect(
      config.accounts.map((account) => [account.name, account.clientId, account.tokenUrl]),
    ).toEqual([
      [
        'a@example.com',
        THUNDERBIRD_CLIENT_ID,
        'https://login.microsoftonline.com/common/oauth2/v2.0/token',
      ],
      ['b@example.com', 'other', 'https://login.microsoftonline.com/common/oauth2/v2.0/token'],
    ]);
  });

  it('validates preset-filled and written values alike: a written http:// token_url is refused', () => {
    const error = errorLoading('provider = office365\ntoken_url = http://login.example.net/token');

    expect(error.key).toBe('token_url');
    expect(error.problem).toMatch(/must use https:\/\//);
  });
});

describe('provider and tenant mistakes', () => {
  it('names the key and the allowed values for an unknown provider', () => {
    expect(errorLoading('provider = yahoo').message).toBe(
      'my.config: section [me@example.com], key provider: "yahoo" is not a known provider; use one of ' +
        'office365, outlook, gmail, or remove provider and set permission_url, token_url, oauth2_scope, ' +
        'redirect_uri and client_id yourself',
    );
  });

  it('reads the provider name ignoring case', () => {
    expect(loadAccount('provider = Office365')).toEqual(loadAccount('provider = office365'));
  });

  it('refuses a tenant that could not be one', () => {
    expect(errorLoading('provider = office365\ntenant = ../evil').message).toBe(
      'my.config: section [me@example.com], key tenant: "../evil" is not a Microsoft tenant; use common, ' +
        'organizations, consumers, your directory (tenant) ID (a GUID) or a verified domain such as ' +
        'contoso.onmicrosoft.com',
    );
  });

  it('refuses a tenant without a provider, rather than ignoring it', () => {
    const body = [
      'tenant = organizations',
      'permission_url = https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
      'token_url = https://login.microsoftonline.com/common/oauth2/v2.0/token',
      'oauth2_scope = x',
      'redirect_uri = https://localhost',
      'client_id = y',
    ].join('\n');

    expect(errorLoading(body).message).toBe(
      'my.config: section [me@example.com], key tenant: only applies with provider = office365 or outlook; ' +
        'add the provider, or remove tenant and write the tenant into permission_url and token_url',
    );
  });

  it('refuses a tenant that both written endpoints would override', () => {
    const body =
      'provider = office365\ntenant = organizations\n' +
      'permission_url = https://login.microsoftonline.com/common/oauth2/v2.0/authorize\n' +
      'token_url = https://login.microsoftonline.com/common/oauth2/v2.0/token';

    expect(errorLoading(body).message).toBe(
      'my.config: section [me@example.com], key tenant: has no effect, because permission_url and token_url are ' +
        'both set (they win over the preset); write the tenant into those URLs and remove tenant, or remove the URLs',
    );
  });
});

describe('providerServers', () => {
  it("gives each provider's IMAP, POP and SMTP host, port and kind of TLS", () => {
    const table = Object.fromEntries(
      PROVIDER_NAMES.map((provider) => [provider, providerServers(provider)]),
    );

    expect(table).toEqual({
      office365: {
        IMAP: { host: 'outlook.office365.com', port: 993, tls: 'implicit' },
        POP: { host: 'outlook.office365.com', port: 995, tls: 'implicit' },
        SMTP: { host: 'smtp.office365.com', port: 587, tls: 'starttls' },
      },
      outlook: {
        IMAP: { host: 'outlook.office365.com', port: 993, tls: 'implicit' },
        POP: { host: 'outlook.office365.com', port: 995, tls: 'implicit' },
        SMTP: { host: 'smtp-mail.outlook.com', port: 587, tls: 'starttls' },
      },
      gmail: {
        IMAP: { host: 'imap.gmail.com', port: 993, tls: 'implicit' },
        POP: { host: 'pop.gmail.com', port: 995, tls: 'implicit' },
        SMTP: { host: 'smtp.gmail.com', port: 587, tls: 'starttls' },
      },
    });
  });
});

describe('config.example.ini', () => {
  it('loads, and its short provider = office365 account equals its spelled-out one', async () => {
    const path = fileURLToPath(new URL('../../config.example.ini', import.meta.url));
    const config = parseConfig(await readFile(path, 'utf8'), path);
    const byName = new Map(config.accounts.map((account) => [account.name, account]));

    expect([...byName.keys()]).toEqual(['john.smith@example.com', 'shared.mailbox@example.com']);
    expect({ ...byName.get('john.smith@example.com'), name: '' }).toEqual({
      ...byName.get('shared.mailbox@example.com'),
      name: '',
    });
  });
});

/**
 * The flows in which nobody signs in at the provider's page (client_credentials, password,
 * service_account): what `authorize` and the start-up log say about them, and that their accounts
 * work without the keys only sign-ins need.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { AccountConfig, OAuthFlow } from '../../src/config/types.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';
import { createProviderClient, isSignInFlow, noSignInFor } from '../../src/oauth/index.js';

const IMAP_SERVER = '[IMAP-1993]\nserver_address = outlook.office365.com\n';

function account(flow: OAuthFlow, overrides: Partial<AccountConfig> = {}): AccountConfig {
  return {
    name: 'me@example.com',
    permissionUrl: '',
    tokenUrl: 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token',
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    redirectUri: '',
    clientId: 'client',
    flow,
    usePkce: false,
    ...overrides,
  };
}

describe('what authorize can do for each flow', () => {
  it('has a sign-in to offer only for the authorization code and device flows', () => {
    expect(
      ['authorization_code', 'device', 'client_credentials', 'password', 'service_account'].filter(
        (flow) => isSignInFlow(flow as OAuthFlow),
      ),
    ).toEqual(['authorization_code', 'device']);
    expect(noSignInFor(account('authorization_code'))).toBeUndefined();
    expect(noSignInFor(account('device'))).toBeUndefined();
  });

  it('says why the other flows need no authorisation, naming oauth2_flow', () => {
    expect(noSignInFor(account('password'), 'jane@example.com')).toMatchObject({
      kind: 'config',
      configKey: 'oauth2_flow',
      message:
        "jane@example.com uses oauth2_flow = password, which needs no authorisation: the mail client's first login gets the tokens with the account's own password",
      hint: 'Log in with the mail client; if the identity provider wants more than a password, use oauth2_flow = authorization_code or device',
    });
    expect(noSignInFor(account('client_credentials'))).toMatchObject({
      kind: 'config',
      message:
        'me@example.com uses oauth2_flow = client_credentials: the proxy gets its tokens by itself, nobody signs in',
    });
    expect(noSignInFor(account('service_account'))).toMatchObject({
      kind: 'config',
      configKey: 'oauth2_flow',
      message:
        "me@example.com uses oauth2_flow = service_account: the proxy gets its tokens by itself with the service account's key, nobody signs in",
      hint: 'Nothing to do: logins get tokens as they need them, once a Google Workspace administrator has granted the service account domain-wide delegation',
    });
  });
});

describe('accounts of flows without a sign-in', () => {
  it('need no permission_url: the token endpoint is all they use', () => {
    for (const flow of ['password', 'client_credentials'] as const) {
      const config = createProviderClient(
        account(flow, { permissionUrl: 'copied from elsewhere, never used' }),
      );
      expect(config.serverMetadata().token_endpoint).toBe(account(flow).tokenUrl);
      expect(config.serverMetadata().authorization_endpoint).toBeUndefined();
    }
    expect(() => createProviderClient(account('authorization_code'))).toThrow(
      expect.objectContaining({ configKey: 'permission_url' }),
    );
  });

  it("with provider = office365, the password flow uses the organizations endpoint, which Microsoft requires for it, or the tenant's", () => {
    const load = (extra: string): AccountConfig =>
      parseConfig(
        `${IMAP_SERVER}[me@example.com]\nprovider = office365\noauth2_flow = password\n${extra}`,
        'my.config',
      ).accounts[0]!;
    expect(load('').tokenUrl).toBe(
      'https://login.microsoftonline.com/organizations/oauth2/v2.0/token',
    );
    expect(load('tenant = contoso.onmicrosoft.com\n').tokenUrl).toBe(
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    );
  });
});

describe('start-up warnings about flows', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omp-flows-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('warn about a service_account account whose key is unusable, and not about password accounts', async () => {
    const text =
      `${IMAP_SERVER}[robot@example.com]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = robot\nclient_secret = {}\n` +
      `[bot@example.com]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = file\nclient_secret = ${join(dir, 'gone.json')}\n` +
      '[me@example.com]\noauth2_flow = password\ntoken_url = https://login.microsoftonline.com/organizations/oauth2/v2.0/token\noauth2_scope = s\nclient_id = c\n';
    const file = join(dir, 'config.ini');
    await writeFile(file, text, { mode: 0o600 });
    expect(await startupWarnings(parseConfig(text, file), join(dir, 'tokens.ini'))).toEqual([
      '[robot@example.com] with oauth2_flow = service_account, client_id must be set to `file` or `key`: its logins are refused until that is fixed. ' +
        "Set client_id = file and client_secret to the path of the service account's JSON key file, or client_id = key and client_secret to the JSON key itself.",
      `[bot@example.com] client_secret names the service account key file ${join(dir, 'gone.json')}, which does not exist: its logins are refused until that is fixed. ` +
        "Put the service account's JSON key there, readable only by the user the proxy runs as (chmod 600), or set client_secret to where it is (an absolute path).",
    ]);
  });
});

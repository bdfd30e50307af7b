import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';
import { loginReply } from '../support/faults/imap-steps.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { USER, World } from '../support/world.js';

/**
 * App-only access (`oauth2_flow = client_credentials`), as a tenant admin or a scan-to-email
 * device sets it up: nobody signs in; the proxy asks the identity provider for a token as the
 * app itself, stores it encrypted with the mail client's password, and asks again when it
 * expires. With `use_login_password_as_client_credentials_secret` the config holds no secret at
 * all: the password the mail client sends is the app's client secret.
 *
 * Microsoft's app-only tokens name no user; the test provider's open USER's mailbox, so each
 * set-up runs its own proxy (own port, own token store) for that one account.
 */
let world: World;
const LOCAL_PASSWORD = 'local password of the fetchmail user';

beforeAll(async () => {
  world = await World.start({ clientCredentialsUser: USER });
  await world.dovecot.deliver(USER, Buffer.from('Subject: scanned\r\n\r\nPage 1 of 1\r\n'));
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(() => {
  world.idp.resetTokenRequests();
});

/** A proxy of its own, listening on `port`, with one app-only account for USER. */
function appOnlyProxy(name: string, port: number, options: { clientSecret?: string; emailproxy?: string[] }): Promise<ProxyProcess> {
  const config = [
    world.imapSection(port),
    `[${USER}]`,
    'oauth2_flow = client_credentials',
    `token_url = ${world.idp.urls.token}`,
    'oauth2_scope = https://outlook.office365.com/.default',
    `client_id = ${world.idp.clients.service.clientId}`,
    ...(options.clientSecret === undefined ? [] : [`client_secret = ${options.clientSecret}`]),
    '',
    ...(options.emailproxy ? ['[emailproxy]', ...options.emailproxy, ''] : []),
  ].join('\n');
  return world.startProxyIn(name, config);
}

const appOnlyRequests = (): number => world.idp.tokenRequests.byGrantType.client_credentials ?? 0;

describe('app-only tokens, the secret in the config', () => {
  it('curl reads the mailbox with no sign-in; the token is stored encrypted and used again', async () => {
    const port = world.ports[2]!;
    const proxy = await appOnlyProxy('secret-in-config', port, { clientSecret: world.idp.clients.service.clientSecret });

    const fetched = await runClient('curl', ['-sS', '--user', `${USER}:${LOCAL_PASSWORD}`, `imap://127.0.0.1:${port}/INBOX;UID=1`]);
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Page 1 of 1');
    expect(appOnlyRequests()).toBe(1);

    const store = await readFile(proxy.tokenStore, 'utf8');
    expect((await stat(proxy.tokenStore)).mode & 0o777).toBe(0o600);
    expect(store).toMatch(/^access_token = gAAAAA/m);
    expect(store).not.toMatch(/^refresh_token/m);

    expect(await loginReply(port, USER, LOCAL_PASSWORD)).toMatch(/^a1 OK /);
    expect(appOnlyRequests()).toBe(1);
    expect(proxy.output).not.toContain('Please visit');
  });
});

describe('app-only tokens with use_login_password_as_client_credentials_secret', () => {
  it('the login password is the client secret: the provider judges it, then the stored token does', async () => {
    const port = world.ports[3]!;
    const secret = world.idp.clients.service.clientSecret;
    const proxy = await appOnlyProxy('secret-from-login', port, { emailproxy: ['use_login_password_as_client_credentials_secret = True'] });

    // Nothing stored yet: the provider refuses a wrong secret, and nothing is written.
    expect(await loginReply(port, USER, 'not the secret')).toMatch(
      /^a1 NO \[AUTHENTICATIONFAILED\] The identity provider refused the password of john\.smith@example\.com as the app's client secret/,
    );
    expect(await readFile(proxy.tokenStore, 'utf8').catch(() => '')).not.toContain(`[${USER}]`);

    expect(await loginReply(port, USER, secret)).toMatch(/^a1 OK /);
    expect(await loginReply(port, USER, secret)).toMatch(/^a1 OK /);
    expect(appOnlyRequests()).toBe(2);

    // Now a token is stored: a wrong password does not decrypt it, and the provider is not asked.
    expect(await loginReply(port, USER, 'not the secret')).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\] Wrong password/);
    expect(appOnlyRequests()).toBe(2);
    expect(proxy.output).not.toContain(secret);
  });
});

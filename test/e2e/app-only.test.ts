import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
 * all: the password the mail client sends is the app's client secret. Where the tenant allows no
 * secrets, certificate credentials (`jwt_certificate_path`, `jwt_key_path`) stand in for it: the
 * test identity provider's certificate client accepts only assertions signed by that key, so a
 * token proves the assertion was sent and right.
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

/**
 * A proxy of its own, listening on `port`, with one app-only account for USER: the service
 * client's, or `clientId`'s, with `credentials` (its secret, certificate lines, or nothing).
 */
function appOnlyProxy(
  name: string,
  port: number,
  options: { clientId?: string; credentials?: string[]; emailproxy?: string[] },
): Promise<ProxyProcess> {
  const config = [
    world.imapSection(port),
    `[${USER}]`,
    'oauth2_flow = client_credentials',
    `token_url = ${world.idp.urls.token}`,
    'oauth2_scope = https://outlook.office365.com/.default',
    `client_id = ${options.clientId ?? world.idp.clients.service.clientId}`,
    ...(options.credentials ?? []),
    '',
    ...(options.emailproxy ? ['[emailproxy]', ...options.emailproxy, ''] : []),
  ].join('\n');
  return world.startProxyIn(name, config);
}

const appOnlyRequests = (): number => world.idp.tokenRequests.byGrantType.client_credentials ?? 0;

describe('app-only tokens, the secret in the config', () => {
  it('curl reads the mailbox with no sign-in; the token is stored encrypted and used again', async () => {
    const port = world.ports[2]!;
    const proxy = await appOnlyProxy('secret-in-config', port, {
      credentials: [`client_secret = ${world.idp.clients.service.clientSecret}`],
    });

    const fetched = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${LOCAL_PASSWORD}`,
      `imap://127.0.0.1:${port}/INBOX;UID=1`,
    ]);
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
    const proxy = await appOnlyProxy('secret-from-login', port, {
      emailproxy: ['use_login_password_as_client_credentials_secret = True'],
    });

    // Nothing stored yet: the provider refuses a wrong secret, and nothing is written.
    expect(await loginReply(port, USER, 'not the secret')).toMatch(
      /^a1 NO \[AUTHENTICATIONFAILED\] The identity provider refused the password of john\.smith@example\.com as the app's client secret/,
    );
    expect(await readFile(proxy.tokenStore, 'utf8').catch(() => '')).not.toContain(`[${USER}]`);

    expect(await loginReply(port, USER, secret)).toMatch(/^a1 OK /);
    expect(await loginReply(port, USER, secret)).toMatch(/^a1 OK /);
    expect(appOnlyRequests()).toBe(2);

    // Now a token is stored: a wrong password does not decrypt it, and the provider is not asked.
    expect(await loginReply(port, USER, 'not the secret')).toMatch(
      /^a1 NO \[AUTHENTICATIONFAILED\] Wrong password/,
    );
    expect(appOnlyRequests()).toBe(2);
    expect(proxy.output).not.toContain(secret);
  });
});

/** Lines of the PEM key's body: none of them may ever be printed. */
async function keyLines(): Promise<string[]> {
  const pem = await readFile(world.idp.clients.certificate.keyFile, 'utf8');
  return pem.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
}

describe('the test identity provider', () => {
  it('refuses the certificate client without an assertion, or with a secret instead', async () => {
    const withoutAssertion: Array<Record<string, string>> = [{}, { client_secret: 'anything' }];
    for (const extra of withoutAssertion) {
      const response = await fetch(world.idp.urls.token, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: world.idp.clients.certificate.clientId,
          scope: 'https://outlook.office365.com/.default',
          ...extra,
        }),
      });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error?: string }).error).toBe('invalid_client');
    }
  });
});

describe('app-only tokens with certificate credentials', () => {
  it('curl reads the mailbox; the files are found relative to the config; the key is never printed', async () => {
    const port = world.ports[4]!;
    // The pair sits beside the proxy's config, named relative to it.
    const certs = join(world.dir, 'certificate', 'certs');
    await mkdir(certs, { recursive: true });
    await copyFile(world.idp.clients.certificate.certFile, join(certs, 'app.pem'));
    await copyFile(world.idp.clients.certificate.keyFile, join(certs, 'app.key'));
    const proxy = await appOnlyProxy('certificate', port, {
      clientId: world.idp.clients.certificate.clientId,
      credentials: ['jwt_certificate_path = certs/app.pem', 'jwt_key_path = certs/app.key'],
    });

    const fetched = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${LOCAL_PASSWORD}`,
      `imap://127.0.0.1:${port}/INBOX;UID=1`,
    ]);
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Page 1 of 1');
    expect(appOnlyRequests()).toBe(1);

    const store = await readFile(proxy.tokenStore, 'utf8');
    expect(store).toMatch(/^access_token = gAAAAA/m);
    expect(await loginReply(port, USER, LOCAL_PASSWORD)).toMatch(/^a1 OK /);
    expect(appOnlyRequests()).toBe(1);

    for (const line of await keyLines()) expect(proxy.output).not.toContain(line);
  });

  it('a missing key file: the login is refused with a reply naming the file, and nothing reaches the provider', async () => {
    const port = world.ports[5]!;
    const missing = join(world.dir, 'missing', 'app.key');
    const proxy = await appOnlyProxy('missing-key', port, {
      clientId: world.idp.clients.certificate.clientId,
      credentials: [
        `jwt_certificate_path = ${world.idp.clients.certificate.certFile}`,
        `jwt_key_path = ${missing}`,
      ],
    });
    // Said at start, before any login.
    expect(proxy.output).toContain(`cannot read jwt_key_path ${missing}: it does not exist`);

    const reply = await loginReply(port, USER, LOCAL_PASSWORD);
    expect(reply).toMatch(/^a1 NO /);
    expect(reply).toContain(missing);
    expect(appOnlyRequests()).toBe(0);
    for (const line of await keyLines()) expect(proxy.output).not.toContain(line);
  });
});

import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { USER, World } from '../support/world.js';

/**
 * App-only access with certificate credentials, as an Office 365 tenant admin sets it up when
 * secrets are not allowed: the app registration holds a certificate, the config names it and its
 * private key (`jwt_certificate_path`, `jwt_key_path`) and holds no secret at all. The test
 * identity provider's certificate client accepts only assertions signed by that key, so a token
 * proves the assertion was sent and right.
 */
let world: World;
const LOCAL_PASSWORD = 'local password of the scanner';

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

/** A proxy of its own with one app-only account whose credentials are `jwtLines`. */
async function certificateProxy(name: string, port: number, jwtLines: (dir: string) => Promise<string[]>): Promise<ProxyProcess> {
  const dir = join(world.dir, name);
  await mkdir(dir, { recursive: true });
  const config = [
    world.imapSection(port),
    `[${USER}]`,
    'oauth2_flow = client_credentials',
    `token_url = ${world.idp.urls.token}`,
    'oauth2_scope = https://outlook.office365.com/.default',
    `client_id = ${world.idp.clients.certificate.clientId}`,
    ...(await jwtLines(dir)),
    '',
  ].join('\n');
  return world.startProxyIn(name, config);
}

const appOnlyRequests = (): number => world.idp.tokenRequests.byGrantType.client_credentials ?? 0;

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
    const port = world.ports[2]!;
    const proxy = await certificateProxy('certificate', port, async (dir) => {
      await mkdir(join(dir, 'certs'));
      await copyFile(world.idp.clients.certificate.certFile, join(dir, 'certs', 'app.pem'));
      await copyFile(world.idp.clients.certificate.keyFile, join(dir, 'certs', 'app.key'));
      return ['jwt_certificate_path = certs/app.pem', 'jwt_key_path = certs/app.key'];
    });

    const fetched = await runClient('curl', ['-sS', '--user', `${USER}:${LOCAL_PASSWORD}`, `imap://127.0.0.1:${port}/INBOX;UID=1`]);
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
    const port = world.ports[3]!;
    const missing = join(world.dir, 'missing', 'app.key');
    const proxy = await certificateProxy('missing-key', port, async () => [
      `jwt_certificate_path = ${world.idp.clients.certificate.certFile}`,
      `jwt_key_path = ${missing}`,
    ]);
    // Said at start, before any login.
    expect(proxy.output).toContain(`cannot read jwt_key_path ${missing}: it does not exist`);

    const reply = await loginReply(port, USER, LOCAL_PASSWORD);
    expect(reply).toMatch(/^a1 NO /);
    expect(reply).toContain(missing);
    expect(appOnlyRequests()).toBe(0);
    for (const line of await keyLines()) expect(proxy.output).not.toContain(line);
  });
});

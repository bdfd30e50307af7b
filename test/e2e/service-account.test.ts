import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseServiceAccountKey, serviceAccountAssertion } from '../../src/oauth/index.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { JWT_BEARER_GRANT } from '../peers/idp.js';
import { introspect } from '../peers/introspect.js';
import { runClient } from '../support/clients.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { USER, World } from '../support/world.js';

/**
 * Google Workspace service accounts with domain-wide delegation (`oauth2_flow = service_account`),
 * configured as email-oauth2-proxy users do: `client_id = file` and the key file's path in
 * `client_secret`, or `client_id = key` and the JSON key pasted into the config. Nobody signs in:
 * the proxy signs an assertion naming the login as the user to act as, trades it at the test
 * identity provider (which checks it as Google does) for a token to that user's mailbox, stores the
 * token encrypted with the mail client's password, and asks again when it expires. Real Dovecot
 * accepts the token only for the user it names.
 */
let world: World;
const LOCAL_PASSWORD = 'local password of the mail client';
/** A user of the domain the administrator has not granted the service account delegation for. */
const UNDELEGATED = 'not.delegated@example.com';

beforeAll(async () => {
  world = await World.start();
  await world.dovecot.deliver(
    USER,
    Buffer.from('Subject: quarterly report\r\n\r\nDelegated reading works\r\n'),
  );
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(() => {
  world.idp.resetTokenRequests();
});

const assertionRequests = (): number => world.idp.tokenRequests.byGrantType[JWT_BEARER_GRANT] ?? 0;

/** One line from the middle of the service account's private key: it must never be printed. */
function privateKeyLine(keyJson: string): string {
  const pem = (JSON.parse(keyJson) as { private_key: string }).private_key;
  return pem.split('\n')[5]!;
}

/** A proxy of its own, listening on `port`, with the given account sections. */
function serviceAccountProxy(
  name: string,
  port: number,
  accounts: string[],
  catchAll = false,
): Promise<ProxyProcess> {
  const config = [
    world.imapSection(port),
    ...(catchAll ? ['[emailproxy]', 'allow_catch_all_accounts = True', ''] : []),
    ...accounts,
  ].join('\n');
  return world.startProxyIn(name, config);
}

async function proxyDir(name: string): Promise<string> {
  const dir = join(world.dir, name);
  await mkdir(dir);
  return dir;
}

describe('the test identity provider checks assertions as Google does', () => {
  const key = (): ReturnType<typeof parseServiceAccountKey> =>
    parseServiceAccountKey(world.idp.serviceAccount.keyJson, 'the test key');
  const assertion = (subject = USER, issuedAt?: number): string =>
    serviceAccountAssertion(key(), {
      scope: 'https://mail.google.com/',
      subject,
      ...(issuedAt !== undefined && { issuedAt }),
    });

  async function tokenRequest(
    jwt: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(world.idp.urls.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: jwt }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('issues a token to the mailbox of the user the assertion names, counted under the grant type', async () => {
    const { status, body } = await tokenRequest(assertion());
    expect(status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_in: expect.any(Number),
      token_type: 'Bearer',
    });
    expect(await introspect(world.idp, String(body.access_token))).toMatchObject({
      active: true,
      sub: USER,
    });
    expect(assertionRequests()).toBe(1);
  });

  it("refuses tampered claims, another audience and a stale assertion with invalid_grant, in Google's words", async () => {
    const [header, claims, signature] = assertion().split('.') as [string, string, string];
    const otherUser = Buffer.from(
      JSON.stringify({
        ...(JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as object),
        sub: 'ceo@example.com',
      }),
    ).toString('base64url');
    expect(await tokenRequest(`${header}.${otherUser}.${signature}`)).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' },
    });

    const elsewhere = serviceAccountAssertion(
      { ...key(), tokenUri: new URL('https://oauth2.googleapis.com/token') },
      { scope: 'https://mail.google.com/', subject: USER },
    );
    expect(await tokenRequest(elsewhere)).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'Invalid JWT: Failed audience check.' },
    });

    expect(
      (await tokenRequest(assertion(USER, Math.floor(Date.now() / 1000) - 7200))).body,
    ).toMatchObject({
      error: 'invalid_grant',
      error_description: expect.stringMatching(/^Invalid JWT: Token must be a short-lived token/),
    });
  });

  it('refuses a user without domain-wide delegation with 401 unauthorized_client', async () => {
    expect(await tokenRequest(assertion(UNDELEGATED))).toEqual({
      status: 401,
      body: {
        error: 'unauthorized_client',
        error_description:
          'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      },
    });
  });
});

describe('client_id = file: a catch-all section for the whole domain, the key in a file', () => {
  let proxy: ProxyProcess;
  let port: number;
  let keyFile: string;

  beforeAll(async () => {
    port = world.ports[2]!;
    const dir = await proxyDir('key-file');
    keyFile = join(dir, 'service-account.json');
    await writeFile(keyFile, world.idp.serviceAccount.keyJson, { mode: 0o600 });
    proxy = await serviceAccountProxy(
      'key-file',
      port,
      [
        '[@example.com]',
        'oauth2_flow = service_account',
        'oauth2_scope = https://mail.google.com/',
        'client_id = file',
        `client_secret = ${keyFile}`,
        '',
      ],
      true,
    );
  });

  it("curl reads the delegated user's mailbox with no sign-in; the token is stored encrypted and used again", async () => {
    const fetched = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${LOCAL_PASSWORD}`,
      `imap://127.0.0.1:${port}/INBOX;UID=1`,
    ]);
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Delegated reading works');
    expect(assertionRequests()).toBe(1);

    const store = await readFile(proxy.tokenStore, 'utf8');
    expect((await stat(proxy.tokenStore)).mode & 0o777).toBe(0o600);
    // A catch-all section keeps each mailbox's token under the login name.
    expect(store).toContain(`[${USER}]`);
    expect(store).toMatch(/^access_token = gAAAAA/m);
    expect(store).not.toMatch(/^refresh_token/m);

    expect(await loginReply(port, USER, LOCAL_PASSWORD)).toMatch(/^a1 OK /);
    expect(assertionRequests()).toBe(1);
    expect(proxy.output).not.toContain('Please visit');
  });

  it('a stored token opens only with the password that encrypted it; the provider is not asked', async () => {
    expect(await loginReply(port, USER, 'another password')).toMatch(
      /^a1 NO \[AUTHENTICATIONFAILED\] Wrong password for john\.smith@example\.com/,
    );
    expect(assertionRequests()).toBe(0);
  });

  it('an expired token is replaced by a new assertion at the next login', async () => {
    const store = new FileTokenStore(proxy.tokenStore);
    const fields = await store.read(USER);
    await store.write(USER, {
      ...fields,
      access_token_expiry: String(Math.floor(Date.now() / 1000) - 60),
    });
    expect(await loginReply(port, USER, LOCAL_PASSWORD)).toMatch(/^a1 OK /);
    expect(assertionRequests()).toBe(1);
    expect(Number((await store.read(USER))?.access_token_expiry)).toBeGreaterThan(
      Date.now() / 1000 + 3000,
    );
  });

  it('logins arriving together for a new mailbox share one token request', async () => {
    const colleague = 'colleague@example.com';
    world.idp.serviceAccount.grantDelegation(colleague);
    const replies = await Promise.all(
      [1, 2, 3].map(() => loginReply(port, colleague, LOCAL_PASSWORD)),
    );
    for (const reply of replies) expect(reply).toMatch(/^a1 OK /);
    expect(assertionRequests()).toBe(1);
  });

  it('a user the service account has no delegation for is told about domain-wide delegation, and nothing is stored', async () => {
    const reply = await loginReply(port, UNDELEGATED, LOCAL_PASSWORD);
    expect(reply).toMatch(
      new RegExp(
        `^a1 NO \\[AUTHENTICATIONFAILED\\] Cannot get a token for ${UNDELEGATED.replace(/\./g, '\\.')} with the service account of \\[@example\\.com\\]: ` +
          'The service account token request failed: unauthorized_client \\(Client is unauthorized to retrieve access tokens using this method',
      ),
    );
    expect(reply).toContain(
      'Domain-wide delegation is missing for this service account or these scopes: in the Google Admin console (Security > Access and data control > API controls > Domain-wide delegation)',
    );
    expect(assertionRequests()).toBe(1);
    expect(await readFile(proxy.tokenStore, 'utf8')).not.toContain(`[${UNDELEGATED}]`);
  });

  it('authorize says there is nothing to authorise, as for app-only accounts', async () => {
    const authorize = proxy.cli(['authorize', USER]);
    expect(await authorize.exit()).toBe(2);
    expect(authorize.output).toBe(
      `Could not authorise: ${USER} uses oauth2_flow = service_account: the proxy gets its tokens by itself with the service account's key, nobody signs in. ` +
        'Nothing to do: logins get tokens as they need them, once a Google Workspace administrator has granted the service account domain-wide delegation\n',
    );
    expect(assertionRequests()).toBe(0);
  });

  it('check gets a token with the key and logs in with it', async () => {
    const run = proxy.cli(['check', USER, '--timeout', '5']);
    run.child.stdin?.end();
    const code = await run.exit();
    expect(run.output).toContain(
      `service account key: ${world.idp.serviceAccount.clientEmail} (client ID ${world.idp.serviceAccount.clientId}) from the key file ${keyFile}`,
    );
    expect(run.output).toMatch(
      new RegExp(
        `service account token: obtained for ${USER.replace(/\./g, '\\.')} \\(domain-wide delegation\\), valid until `,
      ),
    );
    expect(run.output).not.toContain(privateKeyLine(world.idp.serviceAccount.keyJson));
    expect(code, run.output).toBe(0);
    expect(assertionRequests()).toBe(1);
  });

  it('never prints the private key', () => {
    expect(proxy.output).not.toContain(privateKeyLine(world.idp.serviceAccount.keyJson));
    expect(proxy.output).not.toContain('PRIVATE KEY');
  });
});

describe('client_id = key: the JSON key pasted into the account section', () => {
  it('reads the mailbox with the key written over indented continuation lines, and warns that the config holds it', async () => {
    const port = world.ports[3]!;
    const dir = await proxyDir('inline-key');
    // A config file others may read (writing it anew keeps this mode), as many are.
    await writeFile(join(dir, 'config.ini'), '');
    await chmod(join(dir, 'config.ini'), 0o644);
    // As a user pastes it: the first line after `client_secret =`, every other line indented.
    const [first, ...rest] = world.idp.serviceAccount.keyJson.trimEnd().split('\n');
    const proxy = await serviceAccountProxy('inline-key', port, [
      `[${USER}]`,
      'oauth2_flow = service_account',
      'oauth2_scope = https://mail.google.com/',
      'client_id = key',
      `client_secret = ${first}`,
      ...rest.map((line) => `    ${line}`),
      '',
    ]);

    const fetched = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${LOCAL_PASSWORD}`,
      `imap://127.0.0.1:${port}/INBOX;UID=1`,
    ]);
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Delegated reading works');
    expect(await loginReply(port, USER, LOCAL_PASSWORD)).toMatch(/^a1 OK /);
    expect(assertionRequests()).toBe(1);

    // The key in it makes a readable config worth a warning.
    expect(proxy.events()).toContainEqual(
      expect.objectContaining({
        event: 'startup_warning',
        msg: expect.stringMatching(
          /config\.ini is readable by other users \(mode 644\) and it holds service account keys; run: chmod 600 /,
        ),
      }),
    );
    expect(proxy.output).not.toContain(privateKeyLine(world.idp.serviceAccount.keyJson));
  });
});

describe('unusable keys', () => {
  let proxy: ProxyProcess;
  let port: number;
  let missing: string;
  let forgedKey: string;

  beforeAll(async () => {
    port = world.ports[4]!;
    const dir = await proxyDir('bad-keys');
    missing = join(dir, 'no-such-key.json');
    // The same service account and key id, but another private key: Google cannot verify its signature.
    const key = JSON.parse(world.idp.serviceAccount.keyJson) as Record<string, string>;
    key.private_key = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    forgedKey = join(dir, 'forged.json');
    await writeFile(forgedKey, JSON.stringify(key, null, 2));
    await chmod(forgedKey, 0o600);
    proxy = await serviceAccountProxy('bad-keys', port, [
      '[missing@example.com]',
      'oauth2_flow = service_account',
      'oauth2_scope = https://mail.google.com/',
      'client_id = file',
      `client_secret = ${missing}`,
      '',
      `[${USER}]`,
      'oauth2_flow = service_account',
      'oauth2_scope = https://mail.google.com/',
      'client_id = file',
      `client_secret = ${forgedKey}`,
      '',
    ]);
  });

  it('a missing key file is a configuration reply naming the file, warned about at start, with no token request', async () => {
    const problem = `client_secret names the service account key file ${missing}, which does not exist`;
    expect(await loginReply(port, 'missing@example.com', LOCAL_PASSWORD)).toBe(
      `a1 NO [AUTHENTICATIONFAILED] Cannot get a token for missing@example.com with the service account of [missing@example.com]: ${problem}. ` +
        "Put the service account's JSON key there, readable only by the user the proxy runs as (chmod 600), or set client_secret to where it is (an absolute path).",
    );
    expect(proxy.events()).toContainEqual(
      expect.objectContaining({
        event: 'startup_warning',
        msg: expect.stringContaining(
          `[missing@example.com] ${problem}: its logins are refused until that is fixed.`,
        ),
      }),
    );
    expect(assertionRequests()).toBe(0);
  });

  it('a key whose signature Google cannot verify gets "Invalid JWT Signature." and what to do about the key', async () => {
    const reply = await loginReply(port, USER, LOCAL_PASSWORD);
    expect(reply).toContain(
      `a1 NO [AUTHENTICATIONFAILED] Cannot get a token for ${USER} with the service account of [${USER}]: The service account token request failed: invalid_grant (Invalid JWT Signature.). `,
    );
    expect(reply).toContain(
      "Google did not accept the key's signature: the key was probably deleted or disabled; create a new JSON key",
    );
    expect(assertionRequests()).toBe(1);
    expect(proxy.output).not.toContain(privateKeyLine(await readFile(forgedKey, 'utf8')));
  });
});

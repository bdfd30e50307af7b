import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Conversation } from '../support/conversation.js';
import { runClient } from '../support/clients.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * The service scenario: the proxy runs with no terminal; an account has no token (or its
 * refresh token died); the user runs `oauth2-mail-proxy authorize ACCOUNT` from another shell.
 * The service is never stopped.
 */
let world: World;
let proxy: ProxyProcess;
/** What the notification hook saw, one block of OAUTH2_MAIL_PROXY_* variables per event. */
let hookLog: string;
const DEVICE_USER = 'device.user@example.com';

beforeAll(async () => {
  world = await World.start();
  await world.dovecot.deliver(USER, Buffer.from('Subject: hi\r\n\r\nheadless hello\r\n'));
  await world.dovecot.deliver(DEVICE_USER, Buffer.from('Subject: hi\r\n\r\ndevice hello\r\n'));
});
afterAll(async () => {
  await world?.stop();
});
beforeEach(async () => {
  const device = world
    .accountSection(DEVICE_USER)
    .replace('client_secret =', 'client_secret =\noauth2_flow = device');
  hookLog = join(world.dir, `hook-${Date.now()}.log`);
  proxy = await world.startProxy({
    config: world.config(device),
    args: [
      '--authorisation-wait',
      '20',
      '--notify-command',
      `env | grep ^OAUTH2_MAIL_PROXY_ | sort >> ${hookLog}; echo >> ${hookLog}`,
    ],
  });
  await proxy.ready();
  world.idp.resetTokenRequests();
});
afterEach(async () => {
  expect(await proxy.stop()).toBe(0);
  const { rm } = await import('node:fs/promises');
  await rm(world.tokenStore, { force: true });
});

const fetchFirstMessage = (user = USER, password = PASSWORD) =>
  runClient('curl', [
    '-sS',
    '--max-time',
    '40',
    '--user',
    `${user}:${password}`,
    `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
  ]);

async function statusJson(): Promise<Array<Record<string, unknown>>> {
  const status = proxy.cli(['status', '--json']);
  expect(await status.exit()).toBe(0);
  return (JSON.parse(status.output) as { accounts: Array<Record<string, unknown>> }).accounts;
}

describe('authorising a running service from another shell', () => {
  it('completes a login that is waiting, without a restart', async () => {
    const waitingLogin = fetchFirstMessage();
    await proxy.waitFor(/"event":"authorisation_needed"/);
    expect(proxy.output).toContain(
      `run: oauth2-mail-proxy authorize ${USER} --config-file ${proxy.configFile} --cache-store ${proxy.tokenStore}`,
    );

    const authorize = proxy.cli(['authorize', USER]);
    const [, url] = await authorize.waitFor(/Open this URL in a browser and sign in:\n(\S+)\n/);
    await authorize.waitFor(/Paste the full URL the browser ends on:\n> $/);
    authorize.type(`${await world.idp.browser(url!)}\n`);
    await authorize.waitFor(
      new RegExp(`Authorised ${USER}; the running proxy is using the new token\\.`),
    );
    expect(await authorize.exit()).toBe(0);

    const fetched = await waitingLogin;
    expect(fetched.stdout).toContain('headless hello');
    expect(await readFile(world.tokenStore, 'utf8')).toMatch(/^refresh_token = gAAAAA/m);

    // The notification hook heard both events, with what a user needs to act.
    await vi.waitFor(async () =>
      expect(await readFile(hookLog, 'utf8')).toContain('token_obtained'),
    );
    const [needed, obtained] = (await readFile(hookLog, 'utf8')).trim().split('\n\n');
    expect(needed).toContain('OAUTH2_MAIL_PROXY_EVENT=authorisation_needed');
    expect(needed).toContain(`OAUTH2_MAIL_PROXY_ACCOUNT=${USER}`);
    expect(needed).toContain(`OAUTH2_MAIL_PROXY_URL=${url}`);
    expect(needed).toContain(`OAUTH2_MAIL_PROXY_REASON=run: oauth2-mail-proxy authorize ${USER}`);
    expect(obtained).toBe(
      `OAUTH2_MAIL_PROXY_ACCOUNT=${USER}\nOAUTH2_MAIL_PROXY_EVENT=token_obtained`,
    );
  });

  it('works with no login waiting; the next login stores the tokens with its password', async () => {
    const authorize = proxy.cli(['authorize', USER]);
    const [, url] = await authorize.waitFor(/Open this URL in a browser and sign in:\n(\S+)\n/);
    const redirect = await world.idp.browser(url!);
    authorize.type('https://localhost/?session_state=cut-short-before-the-code\n');
    await authorize.waitFor(/That URL did not work: .*\nPaste the URL again:\n> $/);
    authorize.type(`${redirect}\n`);
    await authorize.waitFor(/will use the new token at the next login/);
    expect(await authorize.exit()).toBe(0);

    expect((await statusJson()).find((a) => a.account === USER)?.state).toBe('authorised-unsaved');
    expect((await fetchFirstMessage()).stdout).toContain('headless hello');
    expect((await statusJson()).find((a) => a.account === USER)?.state).toBe('active');
    expect((await fetchFirstMessage(USER, 'some other password')).stdout).toBe('');
  });

  it('in a terminal with no login waiting, stores the tokens at once with the mail password typed there', async () => {
    // Without it, the first login to arrive, from whoever can reach the port, would set the password.
    const authorize = proxy.cli(['authorize', USER], { tty: true });
    const [, url] = await authorize.waitFor(
      /Open this URL in a browser and sign in:\r?\n(\S+)\r?\n/,
    );
    authorize.type(`${await world.idp.browser(url!)}\r`);
    await authorize.waitFor(
      /Password your mail client uses for john\.smith@example\.com \(it encrypts the new tokens; Enter leaves that to the next login\): $/,
    );
    authorize.type(`${PASSWORD}\r`);
    await authorize.waitFor(/the new tokens are stored, encrypted with that password/);
    expect(await authorize.exit()).toBe(0);
    expect(authorize.output).not.toContain(PASSWORD);

    expect((await statusJson()).find((a) => a.account === USER)?.state).toBe('active');
    expect(await readFile(world.tokenStore, 'utf8')).toMatch(/^refresh_token = gAAAAA/m);
    expect((await fetchFirstMessage(USER, 'some other password')).stdout).toBe('');
    const before = world.idp.tokenRequests.total;
    expect((await fetchFirstMessage()).stdout).toContain('headless hello');
    expect(world.idp.tokenRequests.total).toBe(before);
  });

  it('a second authorize while one is pending joins it (same link), and status shows it', async () => {
    const first = proxy.cli(['authorize', USER]);
    const [, url1] = await first.waitFor(/sign in:\n(\S+)\n/);
    const second = proxy.cli(['authorize', USER]);
    const [, url2] = await second.waitFor(/sign in:\n(\S+)\n/);
    expect(url2).toBe(url1);

    const pending = (await statusJson()).find((a) => a.account === USER);
    expect(pending).toMatchObject({
      state: 'pending',
      pending: { flow: 'authorization_code', url: url1 },
    });

    second.type(`${await world.idp.browser(url1!)}\n`);
    expect(await second.exit()).toBe(0);
    first.child.stdin?.end();
    expect(await first.exit()).toBe(1);
    expect(first.output).toContain('Nothing was pasted');
  });

  it('recovers from a refresh token the provider rejects', async () => {
    await world.seedTokens({ expired: true });
    world.idp.failNextToken('invalid_grant');
    const waitingLogin = fetchFirstMessage();
    await proxy.waitFor(/"event":"refresh_failed".*"kind":"reauthorise"/);
    const authorize = proxy.cli(['authorize', USER]);
    const [, url] = await authorize.waitFor(/sign in:\n(\S+)\n/);
    authorize.type(`${await world.idp.browser(url!)}\n`);
    expect(await authorize.exit()).toBe(0);
    expect((await waitingLogin).stdout).toContain('headless hello');
  });

  it('runs the device flow: the daemon polls while the user enters the code', async () => {
    const authorize = proxy.cli(['authorize', DEVICE_USER]);
    const [, , code] = await authorize.waitFor(
      /Open (\S+) in a browser and enter the code (\S+)\n/,
    );
    await world.idp.approveDevice(code!, DEVICE_USER);
    await authorize.waitFor(new RegExp(`Authorised ${DEVICE_USER.replace(/\./g, '\\.')}`), 30_000);
    expect(await authorize.exit()).toBe(0);
    expect((await fetchFirstMessage(DEVICE_USER)).stdout).toContain('device hello');
  }, 60_000);

  it('50 simultaneous logins with an expired token make exactly one token request', async () => {
    await world.seedTokens({ expired: true });
    const logins = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const client = await Conversation.connect(world.imapPort);
        await client.line();
        client.send(`a LOGIN "${USER}" "${PASSWORD}"`);
        let line = await client.line(30_000);
        while (line.startsWith('* ')) line = await client.line(30_000);
        client.close();
        return line;
      }),
    );
    expect(logins.filter((line) => line.startsWith('a OK'))).toHaveLength(50);
    expect(world.idp.tokenRequests.total).toBe(1);
  });
});

describe('authorize without a running proxy', () => {
  it('runs the flow itself, asks for the mail password, and writes the token store', async () => {
    expect(await proxy.stop()).toBe(0);
    const authorize = ProxyProcess.command(['authorize', USER], proxy);
    const [, url] = await authorize.waitFor(/sign in:\n(\S+)\n/);
    expect(authorize.output).toContain('No running proxy found');
    authorize.type(`${await world.idp.browser(url!)}\n`);
    await authorize.waitFor(/Password your mail client uses/);
    authorize.type(`${PASSWORD}\n`);
    expect(await authorize.exit()).toBe(0);
    expect(authorize.output).not.toContain(PASSWORD);

    proxy = await world.startProxy();
    await proxy.ready();
    expect((await fetchFirstMessage()).stdout).toContain('headless hello');
    expect(world.idp.tokenRequests.total).toBe(1);
  });
});

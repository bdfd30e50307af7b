import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa } from '../peers/certs.js';
import { runClient } from '../support/clients.js';
import { fetchmailHome } from '../support/fetchmail.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * The authorisation page in a real browser (Debian's Chromium, headless) against the test identity
 * provider, while real IMAP logins wait; and everyone without the access key kept out.
 */
let world: World;
let proxy: ProxyProcess;
let browser: BrowserContext;
let profile: string;
let page: Page;
let hookLog: string;
const DEVICE_USER = 'device.user@example.com';
/** `SCREENSHOT_DIR=docs/web` refreshes the pictures in the docs; otherwise they go to the temp dir. */
let shots: string;

/** Debian's Chromium, headless, with a fresh profile each launch and nothing fetched on its own. */
const BROWSER = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 900, height: 900 },
};

beforeAll(async () => {
  world = await World.start();
  shots = process.env.SCREENSHOT_DIR ?? world.dir;
  await world.dovecot.deliver(USER, Buffer.from('Subject: hi\r\n\r\nweb page hello\r\n'));
  await world.dovecot.deliver(DEVICE_USER, Buffer.from('Subject: hi\r\n\r\ndevice hello\r\n'));
  const device = world
    .accountSection(DEVICE_USER)
    .replace('client_secret =', 'client_secret =\noauth2_flow = device');
  hookLog = join(world.dir, 'hook.log');
  proxy = await world.startProxy({
    config: world.config(device),
    args: [
      '--web-address',
      `127.0.0.1:${webPort()}`,
      '--authorisation-wait',
      '90',
      '--notify-command',
      `env | grep ^OAUTH2_MAIL_PROXY_ | sort >> ${hookLog}; echo >> ${hookLog}`,
    ],
  });
  await proxy.ready();
  profile = await mkdtemp(join(tmpdir(), 'omp-chromium-'));
  browser = await chromium.launchPersistentContext(profile, BROWSER);
  // The redirect address after sign-in (https://localhost) has no server: the user copies it from
  // the address bar of a page that failed to load. This stands in for that page.
  await browser.route('https://localhost/**', (route) =>
    route.fulfill({ status: 200, contentType: 'text/plain', body: 'This site can’t be reached' }),
  );
  page = browser.pages()[0] ?? (await browser.newPage());
}, 60_000);

afterAll(async () => {
  await browser?.close();
  expect(await proxy?.stop()).toBe(0);
  await rm(profile, { force: true, recursive: true });
  await world?.stop();
});

const webPort = (): number => world.ports[3]!;
const base = (): string => `http://127.0.0.1:${webPort()}`;

const fetchFirstMessage = (user: string) =>
  runClient('curl', [
    '-sS',
    '--max-time',
    '90',
    '--user',
    `${user}:${PASSWORD}`,
    `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
  ]);

/** fetchmail 6.4 polling USER once, as the user's cron job would. */
async function fetchmail(): Promise<{ code: number; delivered: string[] }> {
  const home = await fetchmailHome(join(world.dir, 'fetchmail'), world.imapPort);
  const run = await home.run(await home.rc('fetchmailrc', USER, PASSWORD), [], 120_000);
  const files = await readdir(home.delivered);
  return {
    code: run.code,
    delivered: await Promise.all(files.map((name) => readFile(join(home.delivered, name), 'utf8'))),
  };
}

function card(account: string): Locator {
  return page.locator('section.account', {
    has: page.getByRole('heading', { name: account, exact: true }),
  });
}

async function printedUrl(): Promise<string> {
  const command = proxy.cli(['web-url']);
  expect(await command.exit()).toBe(0);
  return command.output.trim();
}

describe('the authorisation page in a browser (the paste form also without JavaScript)', () => {
  it('opens with the printed address, then drops the key from the address', async () => {
    const url = await printedUrl();
    expect(url).toMatch(new RegExp(`^${base()}/\\?key=[\\w-]{43}$`));
    // The log prints the same address, as notebook servers do.
    expect(proxy.output).toContain(url);

    // Without the key: a form asks for it, and a wrong one is refused.
    await page.goto(`${base()}/`);
    await page.getByLabel('Access key').fill('not the key');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('alert').getByText('That access key is wrong.').waitFor();
    expect(await browser.cookies(base())).toEqual([]);
    await page.screenshot({ path: join(shots, 'access-key.png'), fullPage: true });

    await page.goto(url);
    expect(page.url()).toBe(`${base()}/`);
    await card(USER).getByText('Not signed in').waitFor();
    const cookies = await browser.cookies(base());
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'omp_session', httpOnly: true, sameSite: 'Strict' }),
    ]);
  });

  it('shows a waiting fetchmail login by itself, and completes it with the pasted address', async () => {
    // The page is already open: it must notice fetchmail's login without a reload.
    const waitingLogin = fetchmail();
    const pending = card(USER);
    await pending.getByText('Waiting for sign-in').waitFor({ timeout: 20_000 });
    await pending.locator('.waiting', { hasText: '1' }).waitFor();
    await pending.getByText('paste the whole address the browser ends on').waitFor();
    await page.screenshot({ path: join(shots, 'waiting.png'), fullPage: true });

    // A mangled paste, from a browser without JavaScript: the same explanation as the terminal's,
    // and the login keeps waiting.
    const plainProfile = await mkdtemp(join(tmpdir(), 'omp-chromium-'));
    const plain = await chromium.launchPersistentContext(plainProfile, {
      ...BROWSER,
      javaScriptEnabled: false,
    });
    try {
      const noScript = plain.pages()[0] ?? (await plain.newPage());
      await noScript.goto(await printedUrl());
      const fields = noScript.locator('input:not([type=hidden]), textarea');
      expect(await fields.count()).toBeGreaterThan(0);
      for (const field of await fields.all()) {
        const id = await field.getAttribute('id');
        expect(await noScript.locator(`label[for="${id}"]`).count()).toBe(1);
      }
      const plainCard = noScript.locator('section.account', { hasText: USER });
      await plainCard
        .getByLabel('Address the browser ended on')
        .fill('https://localhost/?session_state=cut-short');
      await plainCard.getByRole('button', { name: 'Finish sign-in' }).click();
      await noScript
        .getByRole('alert')
        .getByText(
          "The address has no code= part. After signing in, copy the whole address from the browser's address bar",
        )
        .waitFor();
      await noScript.screenshot({ path: join(shots, 'paste-error.png'), fullPage: true });
    } finally {
      await plain.close();
      await rm(plainProfile, { force: true, recursive: true });
    }

    const [signIn] = await Promise.all([
      browser.waitForEvent('page'),
      card(USER).getByRole('link', { name: 'Open the sign-in page' }).click(),
    ]);
    await signIn.waitForURL(/^https:\/\/localhost\/\?/, { timeout: 20_000 });
    const redirect = signIn.url();
    expect(redirect).toContain('code=');
    await signIn.close();

    await card(USER).getByLabel('Address the browser ended on').fill(redirect);
    await card(USER).getByRole('button', { name: 'Finish sign-in' }).click();
    await page
      .getByRole('status')
      .getByText('The waiting login went through and the proxy is using the new token.')
      .waitFor();
    const fetched = await waitingLogin;
    expect(fetched.code).toBe(0);
    expect(fetched.delivered).toEqual([expect.stringContaining('web page hello')]);
    await card(USER).getByText('Working').waitFor();
    await page.screenshot({ path: join(shots, 'authorised.png'), fullPage: true });

    // The page never shows a token or a password.
    const shown = await page.content();
    const store = await readFile(world.tokenStore, 'utf8');
    for (const token of store.match(/gAAAAA[\w=-]+/g) ?? []) expect(shown).not.toContain(token);
    expect(shown).not.toContain(PASSWORD);

    // The notification hook links to the page (without its key) instead of naming a command.
    const hooks = await readFile(hookLog, 'utf8');
    expect(hooks).toContain(`OAUTH2_MAIL_PROXY_WEB_URL=${base()}/`);
    expect(hooks).toContain(`OAUTH2_MAIL_PROXY_REASON=open ${base()}/ in a browser`);
    expect(hooks).not.toContain('key=');
  }, 90_000);

  it('runs the device flow: shows the code and a QR code, then stores the tokens with the typed password', async () => {
    const device = card(DEVICE_USER);
    await device.getByRole('button', { name: 'Start sign-in' }).click();
    const code = (await card(DEVICE_USER).locator('.user-code').textContent({ timeout: 20_000 }))!;
    expect(code).toMatch(/\S{4,}/);
    expect(await card(DEVICE_USER).locator('figure.qr svg path').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, 'device-code.png'), fullPage: true });

    await world.idp.approveDevice(code, DEVICE_USER);
    // The daemon polls the provider; the page notices by itself and asks for the password.
    const password = card(DEVICE_USER).getByLabel("Mail client's password for this account");
    await password.waitFor({ timeout: 30_000 });
    // The message about starting the sign-in is stale now, and gone.
    expect(await page.locator('.flash').count()).toBe(0);
    await page.screenshot({ path: join(shots, 'signed-in-unsaved.png'), fullPage: true });
    await password.fill(PASSWORD);
    await card(DEVICE_USER).getByRole('button', { name: 'Encrypt and store' }).click();
    await page.getByRole('status').getByText('The new tokens are stored').waitFor();
    expect(await readFile(world.tokenStore, 'utf8')).toContain(`[${DEVICE_USER}]`);
    expect((await fetchFirstMessage(DEVICE_USER)).stdout).toContain('device hello');
  }, 90_000);

  it('is readable on a phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    expect(width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(shots, 'phone.png'), fullPage: true });
    await page.setViewportSize({ width: 900, height: 900 });
  });
});

describe('who is kept out', () => {
  /** A session as a browser holding the key gets it, and a form's one-time token from the page. */
  async function session(): Promise<{ cookie: string; formToken: () => Promise<string> }> {
    const opened = await fetch(await printedUrl(), { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/');
    const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
    return {
      cookie,
      formToken: async () => {
        const html = await (await fetch(`${base()}/`, { headers: { cookie } })).text();
        return /name="csrf" value="([^"]+)"/.exec(html)![1]!;
      },
    };
  }
  const post = (path: string, cookie: string, body: Record<string, string>, headers = {}) =>
    fetch(`${base()}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(body),
    });

  it('refuses a wrong key, slower each time, and sets no cookie', async () => {
    const timings: number[] = [];
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const started = Date.now();
      const refused = await fetch(`${base()}/?key=not-the-key`, { redirect: 'manual' });
      timings.push(Date.now() - started);
      expect(refused.status).toBe(403);
      expect(refused.headers.get('set-cookie')).toBeNull();
      expect(await refused.text()).toContain('That access key is wrong.');
    }
    expect(timings[0]).toBeGreaterThanOrEqual(450);
    expect(timings[1]).toBeGreaterThanOrEqual(950);
    const noKey = await fetch(`${base()}/accounts`);
    expect(noKey.status).toBe(401);
    expect(await noKey.text()).not.toContain(USER);
  });

  it("from another site's link, moves on with a page of its own so the Strict cookie goes along", async () => {
    const opened = await fetch(await printedUrl(), {
      redirect: 'manual',
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(opened.status).toBe(200);
    expect(opened.headers.get('set-cookie')).toMatch(/^omp_session=[\w-]{43}; /);
    expect(await opened.text()).toMatch(/<meta http-equiv="refresh" content="0; url=\/"/);
  });

  it('sends a strict Content-Security-Policy and loads nothing from elsewhere', async () => {
    const answer = await fetch(`${base()}/`);
    expect(answer.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    const { cookie } = await session();
    const html = await (await fetch(`${base()}/`, { headers: { cookie } })).text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\/(?!127\.0\.0\.1)/);
  });

  it('refuses a form without its CSRF token, a replayed form, and a form from another site', async () => {
    const { cookie, formToken } = await session();
    const missing = await post('/authorize', cookie, { account: USER });
    expect(missing.status).toBe(403);
    expect(await missing.text()).toContain('without its security token');

    const token = await formToken();
    const first = await post('/logout', cookie, { csrf: token });
    expect(first.status).toBe(303);
    const again = await session();
    const replayToken = await again.formToken();
    expect((await post('/store', again.cookie, { csrf: replayToken, account: USER })).status).toBe(
      303,
    );
    const replayed = await post('/store', again.cookie, { csrf: replayToken, account: USER });
    expect(replayed.status).toBe(403);
    expect(await replayed.text()).toContain('This form was sent already');

    const forged = await post(
      '/authorize',
      again.cookie,
      { csrf: await again.formToken(), account: USER },
      { origin: 'http://evil.example' },
    );
    expect(forged.status).toBe(403);
  });

  it('refuses another site whose name points at 127.0.0.1 (DNS rebinding), not a tunnel', async () => {
    const status = async (host: string): Promise<string> =>
      (
        await runClient('curl', [
          '-sS',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-H',
          `Host: ${host}`,
          `${await printedUrl()}`,
        ])
      ).stdout;
    expect(await status(`evil.example:${webPort()}`)).toBe('421');
    // ssh -L 9000:127.0.0.1:PORT: the browser names localhost:9000.
    expect(await status('localhost:9000')).toBe('303');
  });

  it('keeps out a second local user who lacks the key', async () => {
    const asNobody = (args: string[]) => runClient('runuser', ['-u', 'nobody', '--', ...args]);
    const statusSeenByNobody = async (path: string): Promise<string> =>
      (await asNobody(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `${base()}${path}`]))
        .stdout;
    expect(await statusSeenByNobody('/')).toBe('401');
    const accounts = await asNobody(['curl', '-sS', `${base()}/accounts`]);
    expect(accounts.stdout).not.toContain(USER);
    expect(await statusSeenByNobody('/?key=guess')).toBe('403');
    const secretFile = join(world.dir, 'web-secret');
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    expect((await asNobody(['cat', secretFile])).code).not.toBe(0);
    expect((await asNobody(['cat', join(world.dir, 'web-url')])).code).not.toBe(0);
  });
});

describe('listening beyond loopback', () => {
  it('serves the page over TLS with its own certificate', async () => {
    const dir = join(world.dir, 'tls');
    await mkdir(dir);
    const ca = await makeTestCa(dir);
    const served = await ProxyProcess.start({
      dir,
      config: world.imapSection(world.ports[5]!) + world.accountSection(),
      args: [
        '--web-address',
        `localhost:${world.ports[4]}`,
        '--web-certificate',
        ca.certFile,
        '--web-key',
        ca.keyFile,
      ],
    });
    try {
      await served.ready();
      const command = served.cli(['web-url']);
      expect(await command.exit()).toBe(0);
      const url = command.output.trim();
      expect(url).toMatch(new RegExp(`^https://localhost:${world.ports[4]}/\\?key=`));
      const opened = await runClient('curl', [
        '-sS',
        '-D',
        '-',
        '-o',
        '/dev/null',
        '--cacert',
        ca.caFile,
        url,
      ]);
      expect(opened.stdout).toMatch(/^HTTP\/1\.1 303/);
      expect(opened.stdout).toMatch(
        /set-cookie: omp_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Secure/i,
      );
    } finally {
      expect(await served.stop()).toBe(0);
    }
    // Stopped, the daemon takes its address away: web-url says there is no page.
    const after = ProxyProcess.command(['web-url'], served);
    expect(await after.exit()).toBe(1);
    expect(after.output).toContain('No authorisation page is running');
  });

  it('refuses to start without TLS', async () => {
    const dir = join(world.dir, 'network');
    await mkdir(dir);
    const refused = await ProxyProcess.start({
      dir,
      config: world.imapSection(world.ports[5]!) + world.accountSection(),
      args: ['--web-address', `0.0.0.0:${world.ports[4]}`],
    });
    expect(await refused.exit()).toBe(2);
    expect(refused.output).toContain('is not a loopback address: give the page a certificate');
  });
});

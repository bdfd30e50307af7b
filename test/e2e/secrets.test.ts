import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseIni } from '../../src/config/configparser.js';
import { Conversation } from '../support/conversation.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';
import { openTokens } from '../support/sealed-tokens.js';

/**
 * Every secret the proxy handles, through every path that prints something (debug logs, the
 * notification hook, the CLI's output, the replies clients get), and then a search for them in
 * all of it. A secret found anywhere fails the test.
 */
let world: World;
let proxy: ProxyProcess;
const DESKTOP_USER = 'desktop.user@example.com';
const WRONG_PASSWORD = 'not-the-password-Zq7';
const printed: string[] = [];
const secrets = new Set<string>([PASSWORD, WRONG_PASSWORD]);

beforeAll(async () => {
  world = await World.start();
  const desktop = world
    .accountSection(DESKTOP_USER)
    .replace(/client_id = .*/, `client_id = ${world.idp.clients.desktop.clientId}`)
    .replace('client_secret =', `client_secret = ${world.idp.clients.desktop.clientSecret}`)
    .replace(/redirect_uri = .*/, 'redirect_uri = http://localhost/');
  secrets.add(world.idp.clients.desktop.clientSecret);
  const hook = join(world.dir, 'hook.log');
  proxy = await world.startProxy({
    config: world.config(desktop),
    args: [
      '--debug',
      '--authorisation-wait',
      '15',
      '--notify-command',
      `env | grep ^OAUTH2_MAIL_PROXY_ >> ${hook}`,
    ],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

async function imapLogin(user: string, password: string): Promise<string> {
  const client = await Conversation.connect(world.imapPort);
  const heard: string[] = [await client.line()];
  client.send(`a1 LOGIN "${user}" "${password}"`);
  for (;;) {
    const line = await client.line(30_000);
    heard.push(line);
    if (line.startsWith('a1 ')) break;
  }
  client.send('a2 LOGOUT');
  client.close();
  printed.push(...heard);
  return heard.at(-1)!;
}

async function authorizeWithCli(account: string): Promise<void> {
  const authorize = proxy.cli(['authorize', account]);
  const [, url] = await authorize.waitFor(/sign in:\n(\S+)\n/);
  authorize.type(`${await world.idp.browser(url!)}\n`);
  expect(await authorize.exit()).toBe(0);
  printed.push(authorize.output);
}

it('keeps every password, token and client secret out of logs, hooks, CLI output and replies', async () => {
  // Authorise both accounts (one public client, one with a client secret) while logins wait.
  const waiting = [imapLogin(USER, PASSWORD), imapLogin(DESKTOP_USER, PASSWORD)];
  await proxy.waitFor(/"event":"authorisation_needed".*"event":"authorisation_needed"/s);
  await authorizeWithCli(USER);
  await authorizeWithCli(DESKTOP_USER);
  for (const reply of await Promise.all(waiting)) expect(reply).toMatch(/^a1 OK /);

  // Wrong passwords, refreshes, a provider failure and a refused refresh token.
  expect(await imapLogin(USER, WRONG_PASSWORD)).toMatch(/^a1 NO /);
  const { refreshToken: seededRefresh, accessToken: seededAccess } = await world.seedTokens({
    expired: true,
  });
  secrets.add(seededRefresh).add(seededAccess);
  expect(await imapLogin(USER, PASSWORD)).toMatch(/^a1 OK /);
  world.idp.failNextToken('invalid_grant');
  await world.seedTokens({ expired: true });
  const refused = imapLogin(USER, PASSWORD);
  await proxy.waitFor(/"kind":"reauthorise"/);
  await authorizeWithCli(USER);
  expect(await refused).toMatch(/^a1 OK /);

  const status = proxy.cli(['status', '--json']);
  expect(await status.exit()).toBe(0);
  printed.push(status.output);
  const human = proxy.cli(['status']);
  expect(await human.exit()).toBe(0);
  printed.push(human.output);

  // Every token that is or was in the store, decrypted, joins the list of secrets.
  const store = parseIni(await readFile(world.tokenStore, 'utf8'), 'store');
  for (const account of [USER, DESKTOP_USER]) {
    const fields = Object.fromEntries(store.get(account)!);
    const tokens = await openTokens(fields, PASSWORD);
    secrets.add(tokens.accessToken!).add(tokens.refreshToken!);
  }

  const everything = [
    proxy.output,
    await readFile(join(world.dir, 'hook.log'), 'utf8'),
    ...printed,
  ].join('\n');
  expect(everything).toContain('"level":20'); // debug lines were written, so the scan covers them
  expect(everything).toContain('OAUTH2_MAIL_PROXY_EVENT=token_refreshed');
  for (const secret of secrets)
    expect(everything.includes(secret), `a secret of ${secret.length} characters leaked`).toBe(
      false,
    );
  expect(secrets.size).toBeGreaterThanOrEqual(9);
}, 90_000);

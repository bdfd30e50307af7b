import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseIni } from '../../src/config/configparser.js';
import { readFile } from 'node:fs/promises';
import { runClient } from '../support/clients.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * Once a client has logged in, the daemon knows the account's key and refreshes it in the
 * background before the access token expires: the next login finds a fresh token, and an idle
 * account's refresh token never ages out. Tokens here live 303 s and are refreshed 300 s before
 * expiry, so a background refresh is due about 3 s after each one.
 */
let world: World;
let proxy: ProxyProcess;

beforeAll(async () => {
  world = await World.start({ accessTokenTtlSeconds: 303 });
  proxy = await world.startProxy();
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

const storedExpiry = async (): Promise<number> =>
  Number(
    parseIni(await readFile(world.tokenStore, 'utf8'), 'store')
      .get(USER)
      ?.get('access_token_expiry'),
  );

it('refreshes a known account in the background, without any login', async () => {
  await world.seedTokens();
  const login = await runClient('curl', [
    '-sS',
    '--user',
    `${USER}:${PASSWORD}`,
    `imap://127.0.0.1:${world.imapPort}/`,
  ]);
  expect(login.stderr).toBe('');
  const afterLogin = await storedExpiry();
  world.idp.resetTokenRequests();

  await new Promise((resolve) => setTimeout(resolve, 8_000));
  expect(world.idp.tokenRequests.byGrantType.refresh_token ?? 0).toBeGreaterThanOrEqual(1);
  expect(await storedExpiry()).toBeGreaterThan(afterLogin);
  expect(proxy.output).toMatch(/"event":"token_refreshed"/);
  expect(proxy.output).not.toContain(PASSWORD);
}, 30_000);

/**
 * A token that looks valid to the proxy but that the server rejects (revoked early, issued for
 * someone else): the proxy refreshes once and tries again within the same client login, so the
 * client never hears of it; a second rejection is reported as before, after one refresh only.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { OFFICE365_TEST_SCOPE } from '../peers/idp.js';
import { Conversation } from '../support/conversation.js';
import { finalReply, greeted, loginReply } from '../support/faults/imap-steps.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';
import { sealTokens } from '../support/sealed-tokens.js';

let world: World;
let proxy: ProxyProcess;

beforeAll(async () => {
  world = await World.start();
  proxy = await world.startProxy({ args: ['--authorisation-wait', '0'] });
  await proxy.ready();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

beforeEach(() => world.idp.resetTokenRequests());

/**
 * Stores, for USER, a refresh token issued to `tokenOwner` and an access token that is not due
 * for an hour: `accessToken` when given (one the server will not take), else the real one.
 */
async function seed(tokenOwner: string, accessToken?: string): Promise<void> {
  const issued = await world.idp.issueTokensFor(tokenOwner, OFFICE365_TEST_SCOPE);
  const fields = await sealTokens(
    {
      accessToken: accessToken ?? issued.accessToken,
      accessTokenExpiry: Math.floor(Date.now() / 1000) + 3600,
      refreshToken: issued.refreshToken,
    },
    PASSWORD,
  );
  await new FileTokenStore(world.tokenStore).write(USER, fields);
}

it('POP3: a token the server rejects is refreshed and the same login succeeds', async () => {
  await seed(USER, 'revoked-before-its-time-too');
  const pop = await Conversation.connect(world.pop3Port);
  await pop.expect(/^\+OK/);
  pop.send(`USER ${USER}`);
  await pop.expect(/^\+OK/);
  pop.send(`PASS ${PASSWORD}`);
  await pop.expect(/^\+OK/, 20_000);
  pop.close();
  expect(world.idp.tokenRequests.total).toBe(1);
});

it('IMAP: a token the server rejects is refreshed and the same login succeeds', async () => {
  await seed(USER, 'revoked-before-its-time');
  expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  expect(world.idp.tokenRequests.total).toBe(1);
  expect(proxy.output).toContain('"event":"upstream_retry"');
});

it('a second rejection stands: reported as before, after exactly one refresh', async () => {
  // Every token for this refresh token names another user: Dovecot refuses each of them.
  await seed('someone.else@example.com');
  const client = await greeted(world.imapPort);
  client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
  expect(await finalReply(client, 'a1')).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/);
  client.close();
  expect(world.idp.tokenRequests.total).toBe(1);
});

/**
 * Two instances sharing one PostgreSQL store both know the account (a client logged in through
 * each), and both keep it alive in the background. The identity provider still sees one refresh
 * per due time, not one per instance: each instance sees the other's fresh tokens (or, refreshing
 * at the same moment, finds them under the account's lock) and keeps them.
 * Tokens live 303 s and are refreshed 300 s before expiry: a refresh is due about every 3 s.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const WINDOW_MS = 12_000;
/** A refresh makes the token due again 3 s later, and a timer waits at least 1 s more. */
const DUE_EVERY_MS = 3_000;

let world: World;
let pg: Postgres;
const instances: { proxy: ProxyProcess; imapPort: number }[] = [];

beforeAll(async () => {
  [world, pg] = await Promise.all([World.start({ accessTokenTtlSeconds: 303 }), startPostgres()]);
  await world.seedTokens();
  await world.copyTokensTo(pg.url);
  for (const name of ['a', 'b']) {
    const [imapPort, popPort] = (await freePorts(2)) as [number, number];
    const dir = join(world.dir, name);
    await mkdir(dir);
    const config = world
      .config()
      .replace(`[IMAP-${world.imapPort}]`, `[IMAP-${imapPort}]`)
      .replace(`[POP-${world.pop3Port}]`, `[POP-${popPort}]`);
    const proxy = await ProxyProcess.start({
      dir,
      config,
      args: ['--cache-store', pg.url, '--control-socket', join(dir, 'control.sock')],
    });
    await proxy.ready();
    instances.push({ proxy, imapPort });
  }
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(instances.map(({ proxy }) => proxy.stop()));
  await pg?.stop();
  await world?.stop();
});

it('refreshes once per due time across the fleet, not once per instance', async () => {
  for (const { imapPort } of instances)
    expect(await loginReply(imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  world.idp.resetTokenRequests();
  const refreshedBefore = instances.map(
    ({ proxy }) => proxy.events().filter((line) => line.event === 'token_refreshed').length,
  );

  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));

  const atIdp = world.idp.tokenRequests.byGrantType.refresh_token ?? 0;
  const byInstance = instances.map(
    ({ proxy }, i) =>
      proxy.events().filter((line) => line.event === 'token_refreshed').length -
      refreshedBefore[i]!,
  );
  console.log(
    `refreshes in ${WINDOW_MS / 1000} s: ${atIdp} at the provider, by instance ${byInstance}`,
  );
  // Kept alive at all, and by the fleet as a whole: every refresh one of the instances logged.
  expect(atIdp).toBeGreaterThanOrEqual(1);
  expect(byInstance.reduce((sum, count) => sum + count, 0)).toBe(atIdp);
  // One per due time (the first may fall right at the start): two instances refreshing on their
  // own would make about twice as many.
  expect(atIdp).toBeLessThanOrEqual(Math.floor(WINDOW_MS / DUE_EVERY_MS) + 1);
}, 60_000);

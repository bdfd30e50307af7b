/**
 * Three instances on one PostgreSQL store behind Debian's HAProxy, in front of the real Dovecot
 * and identity provider (which rotates refresh tokens on every use, as Microsoft does):
 *
 * - 600 logins at once on an expired token: all get in, and the provider sees one refresh;
 * - a login waiting for a sign-in on one instance completes when `authorize` runs on another;
 * - an instance killed under load: logins go on through the others, no token is lost;
 * - the database stopped under load: cached logins go on, writes fail as temporary, all recover;
 * - two instances racing to refresh, again and again: the stored chain always works after.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANY_CONNECTIONS } from '../peers/dovecot-config.js';
import { freePorts } from '../peers/free-ports.js';
import { startHaproxy, type Haproxy } from '../peers/haproxy.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { TOKENS_TABLE } from '../../src/tokens/stores/postgres-schema.js';
import { Conversation } from '../support/conversation.js';
import { finalReply, loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const NEWCOMER = 'newcomer@example.com';
/** Tokens in the database that no instance has read yet, their access token expired. */
const UNREAD = 'unread@example.com';

interface Instance {
  readonly name: string;
  readonly dir: string;
  readonly imapPort: number;
  readonly controlSocket: string;
  proxy: ProxyProcess;
}

let world: World;
let pg: Postgres;
let haproxy: Haproxy;
const instances: Instance[] = [];

function configFor(imapPort: number): string {
  return [
    world.imapSection(imapPort),
    world.accountSection(),
    world.accountSection(NEWCOMER),
    world.accountSection(UNREAD),
  ].join('\n');
}

async function startInstance(instance: Omit<Instance, 'proxy'>): Promise<ProxyProcess> {
  const proxy = await ProxyProcess.start({
    dir: instance.dir,
    config: configFor(instance.imapPort),
    args: [
      '--cache-store',
      pg.url,
      '--control-socket',
      instance.controlSocket,
      '--authorisation-wait',
      '60',
    ],
  });
  await proxy.ready();
  return proxy;
}

/** Marks the stored access token expired, as an hour later would. */
async function expireStoredToken(account = USER): Promise<void> {
  await pg.sql(`UPDATE ${TOKENS_TABLE} SET access_token_expiry = '1' WHERE account = '${account}'`);
}

async function storedRow(account = USER): Promise<string> {
  return pg.sql(
    `SELECT refresh_token || access_token_expiry FROM ${TOKENS_TABLE} WHERE account = '${account}'`,
  );
}

const refreshGrants = (): number => world.idp.tokenRequests.byGrantType.refresh_token ?? 0;

beforeAll(async () => {
  [world, pg] = await Promise.all([
    World.start({}, { dovecotConfig: MANY_CONNECTIONS }),
    startPostgres(),
  ]);
  await world.seedTokens({ expired: true });
  await world.copyTokensTo(pg.url);
  for (const name of ['a', 'b', 'c']) {
    const dir = join(world.dir, name);
    await mkdir(dir);
    const [imapPort] = (await freePorts(1)) as [number];
    const instance = { name, dir, imapPort, controlSocket: join(dir, 'control.sock') };
    instances.push({ ...instance, proxy: await startInstance(instance) });
  }
  haproxy = await startHaproxy([
    { name: 'imap', servers: instances.map(({ imapPort }) => ({ port: imapPort })) },
  ]);
  await haproxy.waitFor('imap', ['UP', 'UP', 'UP']);
}, 120_000);

afterAll(async () => {
  await haproxy?.stop();
  await Promise.allSettled(instances.map(({ proxy }) => proxy.stop()));
  await pg?.stop();
  await world?.stop();
});

/** A login through the balancer and a NOOP after it: the reply to each, or the error. */
async function balancedLogin(account = USER): Promise<string> {
  const client = await Conversation.connect(haproxy.ports.imap!);
  try {
    await client.expect(/^\* OK /, 30_000);
    client.send(`a1 LOGIN "${account}" "${PASSWORD}"`);
    const login = await finalReply(client, 'a1', 60_000);
    if (!login.startsWith('a1 OK')) return login;
    client.send('a2 NOOP');
    return await finalReply(client, 'a2', 30_000);
  } catch (err) {
    return (err as Error).message;
  } finally {
    client.close();
  }
}

/** Logins one after another on `clients` connections until `stop` resolves; every reply. */
async function loadUntil(stop: Promise<unknown>, clients: number): Promise<string[]> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const replies: string[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stopped) replies.push(await balancedLogin());
    }),
  );
  return replies;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a fleet of three behind HAProxy', () => {
  it('600 simultaneous logins on an expired token: all in, one refresh at the provider', async () => {
    world.idp.resetTokenRequests();
    const replies = await Promise.all(Array.from({ length: 600 }, () => balancedLogin()));
    const failed = replies.filter((reply) => !reply.startsWith('a2 OK'));
    expect(failed.slice(0, 3)).toEqual([]);
    expect(refreshGrants()).toBe(1);
    expect(world.idp.tokenRequests.total).toBe(1);
  }, 240_000);

  it('a login waiting on one instance completes when authorize runs on another', async () => {
    const [b, a] = [instances[1]!, instances[0]!];
    const client = await Conversation.connect(b.imapPort);
    await client.expect(/^\* OK /);
    client.send(`a1 LOGIN "${NEWCOMER}" "${PASSWORD}"`);
    await b.proxy.waitFor(new RegExp(`"event":"authorisation_needed","account":"${NEWCOMER}"`));

    // In a terminal, as an operator runs it: no login waits on A, so it asks for the mail
    // client's password to store the new tokens with, which is what B's waiting login needs.
    const authorize = ProxyProcess.command(
      ['authorize', NEWCOMER, '--control-socket', a.controlSocket],
      { configFile: a.proxy.configFile, tokenStore: pg.url },
      { tty: true },
    );
    const [, url] = await authorize.waitFor(
      /Open this URL in a browser and sign in:\r?\n(\S+)\r?\n/,
    );
    await authorize.waitFor(/Paste the full URL the browser ends on:\r?\n> $/);
    authorize.type(`${await world.idp.browser(url!)}\n`);
    await authorize.waitFor(/Password your mail client uses for newcomer@example\.com .*: $/);
    authorize.type(`${PASSWORD}\n`);
    await authorize.waitFor(/the new tokens are stored, encrypted with that password/);
    expect(await authorize.exit()).toBe(0);

    // Instance B hears A's write through PostgreSQL and lets its waiting login in.
    expect(await finalReply(client, 'a1', 30_000)).toMatch(/^a1 OK /);
    client.close();
    expect(await storedRow(NEWCOMER)).not.toBe('');
  }, 120_000);

  it('an instance killed under load: logins go on through the others, no token lost', async () => {
    const victim = instances[2]!;
    const before = await pg.sql(`SELECT count(*) FROM ${TOKENS_TABLE}`);
    let killedAt = 0;
    const kill = sleep(2_000).then(() => {
      killedAt = Date.now();
      victim.proxy.child.kill('SIGKILL');
    });
    const settled = kill.then(() => haproxy.waitFor('imap', ['UP', 'UP', 'DOWN']));
    const replies = await loadUntil(
      settled.then(() => sleep(3_000)),
      8,
    );
    const ok = replies.filter((reply) => reply.startsWith('a2 OK')).length;
    const failed = replies.length - ok;
    console.log(
      `killed instance ${victim.name}: ${ok} logins got in, ${failed} cut (those in flight on it)`,
    );
    expect(killedAt).toBeGreaterThan(0);
    // Only logins under way on the killed instance (8 clients at most), or sent to it before
    // HAProxy saw it die, may fail; afterwards every login got in.
    expect(failed).toBeLessThanOrEqual(24);
    expect(ok).toBeGreaterThan(failed);
    expect(await balancedLogin()).toMatch(/^a2 OK/);
    expect(await pg.sql(`SELECT count(*) FROM ${TOKENS_TABLE}`)).toBe(before);

    victim.proxy = await startInstance(victim);
    await haproxy.waitFor('imap', ['UP', 'UP', 'UP']);
    // Its first login reads the tokens, as every instance's has by the time the database stops.
    expect(await loginReply(victim.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  }, 120_000);

  it('the database stopped under load: cached logins go on, writes wait, all recover', async () => {
    await pg.sql(
      `INSERT INTO ${TOKENS_TABLE} (account, access_token, access_token_expiry, refresh_token, token_salt, token_iterations)
       SELECT '${UNREAD}', access_token, '1', refresh_token, token_salt, token_iterations
       FROM ${TOKENS_TABLE} WHERE account = '${USER}'`,
    );
    await pg.halt();
    const whileDown = await loadUntil(sleep(3_000), 4);
    // USER's token is valid and every instance has read it: those logins need no database.
    expect(whileDown.length).toBeGreaterThan(0);
    expect(whileDown.filter((reply) => !reply.startsWith('a2 OK'))).toEqual([]);
    // UNREAD's tokens are out of reach: a temporary failure, which clients retry.
    expect(await balancedLogin(UNREAD)).toMatch(/^a1 NO \[UNAVAILABLE\]/);
    for (const { proxy } of instances) expect(proxy.child.exitCode).toBeNull();

    await pg.resume();
    // A refresh, which must write, works again on every instance, without a restart.
    for (const { imapPort } of instances) {
      await expireStoredToken();
      let reply = '';
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(500)) {
        reply = await loginReply(imapPort, USER, PASSWORD, 30_000);
        if (reply.startsWith('a1 OK')) break;
      }
      expect(reply).toMatch(/^a1 OK /);
    }
  }, 180_000);

  it('two instances racing to refresh a rotating token, ten times: the stored chain works', async () => {
    const [a, b] = instances;
    for (let round = 0; round < 10; round += 1) {
      await expireStoredToken();
      world.idp.resetTokenRequests();
      const replies = await Promise.all([
        loginReply(a!.imapPort, USER, PASSWORD, 30_000),
        loginReply(b!.imapPort, USER, PASSWORD, 30_000),
      ]);
      expect(replies.map((reply) => reply.slice(0, 5))).toEqual(['a1 OK', 'a1 OK']);
      expect(refreshGrants()).toBe(1);
    }
    // The refresh token stored last is the live one: one more refresh with it succeeds.
    await expireStoredToken();
    expect(await balancedLogin()).toMatch(/^a2 OK/);
    for (const { proxy } of instances) expect(proxy.output).not.toMatch(/invalid_grant/);
  }, 120_000);
});

/**
 * Operating an instance on the PostgreSQL store: `status` says when the database does not answer
 * (and stops saying it once it is back, with no restart), a login with a cached token goes on
 * meanwhile, and `check` reports the store it reads the tokens from.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

let world: World;
let pg: Postgres;
let instance: ProxyProcess;
let controlSocket: string;

beforeAll(async () => {
  [world, pg] = await Promise.all([World.start(), startPostgres()]);
  await world.seedTokens();
  await world.copyTokensTo(pg.url);
  const dir = join(world.dir, 'instance');
  await mkdir(dir);
  controlSocket = join(dir, 'control.sock');
  instance = await ProxyProcess.start({
    dir,
    config: world.config(),
    args: ['--cache-store', pg.url, '--control-socket', controlSocket],
  });
  await instance.ready();
}, 60_000);

afterAll(async () => {
  await instance?.stop();
  await pg?.stop();
  await world?.stop();
});

async function status(): Promise<string> {
  const command = ProxyProcess.command(['status', '--control-socket', controlSocket], {
    configFile: instance.configFile,
    tokenStore: pg.url,
  });
  await command.exit();
  return command.output;
}

async function statusUntil(pattern: RegExp, present: boolean): Promise<string> {
  let text = '';
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    text = await status();
    if (pattern.test(text) === present) return text;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`status never ${present ? 'said' : 'stopped saying'} ${pattern}:\n${text}`);
}

describe('status with the database away', () => {
  it('says the store does not answer, logins with a cached token go on, and it recovers by itself', async () => {
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
    expect(await status()).toMatch(new RegExp(`^${USER}: active`, 'm'));

    await pg.halt();
    const down = await statusUntil(/does not answer/, true);
    expect(down).toMatch(
      /^Token store postgresql:\/\/postgres@127\.0\.0\.1:\d+\/tokens does not answer \(.+\); reconnecting\./,
    );
    expect(down).toMatch(/Logins whose access token is still valid go on/);
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);

    await pg.resume();
    expect(await statusUntil(/does not answer/, false)).toMatch(
      new RegExp(`^${USER}: active`, 'm'),
    );
  }, 90_000);
});

describe('check on the PostgreSQL store', () => {
  it('reports the store, then checks the tokens it holds', async () => {
    const command = ProxyProcess.command(['check', USER, '--timeout', '5'], {
      configFile: instance.configFile,
      tokenStore: pg.url,
    });
    command.type(`${PASSWORD}\n`);
    command.child.stdin?.end();
    expect(await command.exit(), command.output).toBe(0);
    expect(command.output).toMatch(
      /Token store postgresql:\/\/postgres@127\.0\.0\.1:\d+\/tokens: PostgreSQL answers, schema ready/,
    );
    expect(command.output).toMatch(/access token/i);
  }, 60_000);
});

describe('authorize without a terminal', () => {
  it('says that other instances get the new tokens only once a login here has stored them', async () => {
    const authorize = ProxyProcess.command(['authorize', USER, '--control-socket', controlSocket], {
      configFile: instance.configFile,
      tokenStore: pg.url,
    });
    const [, url] = await authorize.waitFor(/Open this URL in a browser and sign in:\n(\S+)\n/);
    await authorize.waitFor(/Paste the full URL the browser ends on:\n> $/);
    authorize.type(`${await world.idp.browser(url!)}\n`);
    await authorize.waitFor(
      /will use the new token at the next login \(whose password then encrypts it\)\. Other instances sharing its token store get the new tokens only once that login has stored them/,
    );
    expect(await authorize.exit()).toBe(0);
    // That login: its password opens the stored tokens, so it stores the new ones.
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  });
});

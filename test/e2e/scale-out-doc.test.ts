/**
 * docs/scale-out.md is followed to the letter by operators: its SQL sets up a role the proxy can
 * run as, its instance config loads, and its HAProxy configuration, with only addresses and ports
 * swapped for this machine's, carries a real login through to the real Dovecot with the client's
 * address intact.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { freePorts } from '../peers/free-ports.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { Conversation } from '../support/conversation.js';
import { finalReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const run = promisify(execFile);
const DOC = new URL('../../docs/scale-out.md', import.meta.url);

let doc: string;
let world: World;
let pg: Postgres;

/** The fenced blocks of the guide tagged `language`, in order. */
function blocks(language: string): string[] {
  return [...doc.matchAll(new RegExp('^```' + language + '\\n([\\s\\S]*?)^```$', 'gm'))].map(
    (match) => match[1]!,
  );
}

beforeAll(async () => {
  doc = await readFile(DOC, 'utf8');
  [world, pg] = await Promise.all([World.start(), startPostgres()]);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  await world?.stop();
});

it('its instance config loads, with the balancer trusted on every listener', () => {
  const [ini] = blocks('ini');
  const config = parseConfig(ini!, 'config.ini');
  expect(config.options.cacheStore).toMatch(/^postgresql:\/\/oauth2_mail_proxy@db\.example\.com\//);
  expect(config.options.metricsAddress).toEqual({ host: '10.0.0.11', port: 9431 });
  expect(config.servers.map((server) => server.proxyProtocolFrom)).toEqual([
    ['10.0.0.2'],
    ['10.0.0.2'],
    ['10.0.0.2'],
  ]);
});

it('its HAProxy configuration is valid as written', async () => {
  const file = join(world.dir, 'haproxy-as-written.cfg');
  await writeFile(file, blocks('haproxy')[0]!);
  const { stdout, stderr } = await run('haproxy', ['-c', '-f', file]);
  expect(`${stdout}${stderr}`).toMatch(/Configuration file is valid/);
});

it('its SQL makes a role the proxy runs as, and its HAProxy carries a login to the mailbox', async () => {
  for (const statement of blocks('sql')[0]!
    .split(';')
    .map((text) => text.trim()))
    if (statement !== '') await pg.sql(statement, 'postgres');

  await world.seedTokens();
  const [imap, metrics, frontend, spare1, spare2] = (await freePorts(5)) as number[] as [
    number,
    number,
    number,
    number,
    number,
  ];
  const url = `postgresql://oauth2_mail_proxy@127.0.0.1:${pg.port}/oauth2_mail_proxy`;
  const dir = join(world.dir, 'instance');
  await mkdir(dir);
  // The tokens the world seeded into its file store move to the database, as the guide says.
  const copy = await run(process.execPath, [
    join(process.cwd(), 'dist/cli/main.js'),
    'tokens',
    'copy',
    '--from',
    world.tokenStore,
    '--to',
    url,
  ]);
  expect(copy.stdout + copy.stderr).not.toMatch(/error/i);

  const instance = await ProxyProcess.start({
    dir,
    config: [
      '[emailproxy]',
      `cache_store = ${url}`,
      `metrics_address = 127.0.0.1:${metrics}`,
      '',
      world.imapSection(imap).trim(),
      'proxy_protocol_from = 127.0.0.1',
      '',
      world.accountSection(),
    ].join('\n'),
    env: { PGPASSWORD: 'change-this-password' },
    storeFromConfig: true,
  });
  const haproxyFile = join(world.dir, 'haproxy.cfg');
  await writeFile(
    haproxyFile,
    blocks('haproxy')[0]!
      .replace(/^\s+log \/dev\/log local0\n/m, '')
      // This machine's hard limit on open files is below what maxconn 20000 needs.
      .replace(/maxconn 20000/, 'maxconn 4096')
      .replace(/bind :993/, `bind 127.0.0.1:${frontend}`)
      .replace(/bind :995/, `bind 127.0.0.1:${spare1}`)
      .replace(/bind :587/, `bind 127.0.0.1:${spare2}`)
      .replace(/check port 9431/, `check port ${metrics}`)
      .replace(/10\.0\.0\.1\d:1993/g, `127.0.0.1:${imap}`)
      .replace(/10\.0\.0\.1\d:(1995|1587)/g, `127.0.0.1:${imap}`),
  );
  const haproxy = spawn('haproxy', ['-db', '-f', haproxyFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let haproxyOutput = '';
  haproxy.stderr.on('data', (chunk: Buffer) => (haproxyOutput += chunk.toString()));
  haproxy.stdout.on('data', (chunk: Buffer) => (haproxyOutput += chunk.toString()));
  try {
    await instance.ready();
    let reply = '';
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && !/^a1 OK/.test(reply);) {
      reply = await loginThroughBalancer(frontend).catch((err: Error) => err.message);
      if (!/^a1 OK/.test(reply)) await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(reply, `${haproxyOutput}\n${instance.output}`).toMatch(/^a1 OK /);
    // The balancer's PROXY header named the client, whose session the instance logs as its own.
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      if (instance.events().some((line) => line.event === 'disconnect')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const ended = instance.events().find((line) => line.event === 'disconnect');
    expect(ended).toMatchObject({ remote: '127.0.0.7', account: USER });
    expect(instance.events().find((line) => line.event === 'ready')?.tokenStore).toBe(url);
  } finally {
    haproxy.kill();
    await instance.stop();
  }
}, 120_000);

async function loginThroughBalancer(port: number): Promise<string> {
  const client = await Conversation.connect(port, '127.0.0.7');
  try {
    await client.expect(/^\* OK /, 5_000);
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    return await finalReply(client, 'a1');
  } finally {
    client.close();
  }
}

/**
 * The fleet: the PostgreSQL token store against the file store for a login with a cached token,
 * and logins per second through HAProxy to three instances on that store against one. The table's
 * `direct` column holds the reference (the file store; one instance), `proxy` the fleet's figure.
 *
 * Everything shares this machine's cores (Dovecot, HAProxy, PostgreSQL, the clients), so three
 * instances measure what the shared store and the balancer cost more than what three machines
 * would add.
 */
import type { Context } from '../context.js';
import { imapLogin } from '../protocols/imap.js';
import { compared, type Row } from '../results.js';
import { median } from '../stats.js';
import { freePorts } from '../../test/peers/free-ports.js';
import { startHaproxy, type Haproxy } from '../../test/peers/haproxy.js';
import { publicClientAccountLines } from '../../test/peers/idp.js';
import { startPostgres, type Postgres } from '../../test/peers/postgres.js';
import { ProxyProcess } from '../../test/support/proxy-process.js';
import { PostgresTokenStore } from '../../src/tokens/stores/postgres-store.js';
import { MAIN_ACCOUNT, SECOND_ACCOUNT } from '../peers.js';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

const INSTANCES = 3;
/** Clients logging in at once, each one login after another, in the logins-per-second rounds. */
const CONCURRENT_CLIENTS = 24;

async function startInstance(
  context: Context,
  url: string,
  index: number,
): Promise<{
  proxy: ProxyProcess;
  port: number;
}> {
  const { peers } = context;
  const [port] = (await freePorts(1)) as [number];
  const dir = join(peers.dir, `fleet-${index}`);
  await mkdir(dir, { recursive: true });
  const config = [
    `[IMAP-${port}]`,
    'server_address = 127.0.0.1',
    `server_port = ${peers.dovecot.imapsPort}`,
    `server_ca_file = ${peers.dovecot.caFile}`,
    '',
    ...[MAIN_ACCOUNT, SECOND_ACCOUNT].flatMap(({ user }) => [
      ...publicClientAccountLines(peers.idp, user),
      '',
    ]),
  ].join('\n');
  const proxy = await ProxyProcess.start({
    dir,
    config,
    args: ['--cache-store', url, '--control-socket', join(dir, 'control.sock')],
  });
  await proxy.ready();
  return { proxy, port };
}

/** One login to the tagged OK, in milliseconds. */
async function loginMs(context: Context, port: number): Promise<number> {
  const started = performance.now();
  const wire = await imapLogin('proxy', { port }, context.main);
  const ms = performance.now() - started;
  wire.close();
  return ms;
}

/** Logins per second with {@link CONCURRENT_CLIENTS} clients until `total` logins are in. */
async function loginRate(context: Context, port: number, total: number): Promise<number> {
  let started = 0;
  const begun = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENT_CLIENTS }, async () => {
      while (started < total) {
        started += 1;
        const wire = await imapLogin('proxy', { port }, context.main);
        wire.close();
      }
    }),
  );
  return total / ((performance.now() - begun) / 1000);
}

export async function fleet(context: Context): Promise<Row[]> {
  const { peers, settings, progress } = context;
  const logins = settings.logins;
  const rateLogins = settings.quick ? 240 : 1200;
  let pg: Postgres | undefined;
  let haproxy: Haproxy | undefined;
  const instances: { proxy: ProxyProcess; port: number }[] = [];
  try {
    progress('fleet: a PostgreSQL cluster, the tokens copied in, three instances, HAProxy');
    pg = await startPostgres();
    const store = await PostgresTokenStore.open(pg.url);
    for (const account of await peers.store.accounts()) {
      const fields = await peers.store.read(account);
      if (fields) await store.write(account, fields);
    }
    await store.close();
    for (let i = 0; i < INSTANCES; i += 1) instances.push(await startInstance(context, pg.url, i));
    haproxy = await startHaproxy([
      { name: 'one', servers: [{ port: instances[0]!.port }], check: 'none' },
      {
        name: 'three',
        servers: instances.map(({ port }) => ({ port })),
        check: 'none',
      },
    ]);
    // Each instance derives the account's key once, as after its first login of the day.
    for (const { port } of instances) await loginMs(context, port);
    const filePort = context.imap.proxy.port;
    await loginMs(context, filePort);

    progress(`fleet: ${logins} cached logins per store, alternating`);
    const file: number[] = [];
    const postgres: number[] = [];
    for (let i = 0; i < logins; i += 1) {
      const order = i % 2 === 0 ? ['file', 'pg'] : ['pg', 'file'];
      for (const which of order)
        (which === 'file' ? file : postgres).push(
          await loginMs(context, which === 'file' ? filePort : instances[0]!.port),
        );
    }

    progress(`fleet: ${rateLogins} logins through HAProxy to one instance, then to three (twice)`);
    const one: number[] = [];
    const three: number[] = [];
    for (const which of ['one', 'three', 'three', 'one'] as const)
      (which === 'one' ? one : three).push(
        await loginRate(context, haproxy.ports[which]!, rateLogins / 2),
      );
    const perSecond = (rates: number[]) => rates.reduce((a, b) => a + b, 0) / rates.length;
    return [
      compared(
        {
          id: 'fleet_cached_login_postgres',
          label: 'IMAP login, cached token, PostgreSQL store (direct: file store)',
          unit: 'ms',
          direct: median(file),
          proxy: median(postgres),
          note: `${logins} logins per store, one at a time, alternating`,
        },
        'ratio',
      ),
      compared(
        {
          id: 'fleet_logins_per_second',
          label: `logins/s via HAProxy, ${INSTANCES} instances (direct: 1)`,
          unit: '/s',
          direct: perSecond(one),
          proxy: perSecond(three),
          note: `${rateLogins} logins each, ${CONCURRENT_CLIENTS} clients at once, one store on PostgreSQL, all on this machine's ${availableParallelism()} cores`,
        },
        'ratio',
      ),
    ];
  } finally {
    await haproxy?.stop();
    await Promise.allSettled(instances.map(({ proxy }) => proxy.stop()));
    await pg?.stop();
  }
}

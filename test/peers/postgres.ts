/**
 * A throwaway PostgreSQL cluster for tests: `initdb` in a temp directory as the unprivileged
 * `postgres` user (or `nobody` where the package made none), `postgres` on a free loopback port
 * with its unix socket in that directory, stopped and removed at the end. The binaries are found
 * under /usr/lib/postgresql/<version>/bin (newest first), so another Debian version works too.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from './free-ports.js';

const run = promisify(execFile);

export interface Postgres {
  readonly port: number;
  readonly dir: string;
  /** Superuser URL over TCP to the `tokens` database. */
  readonly url: string;
  /** Runs SQL as the superuser in the `tokens` database (psql, unaligned, tuples only). */
  sql(statement: string, database?: string): Promise<string>;
  /** Stops the server (fast shutdown: connections are cut), keeping the data. */
  halt(): Promise<void>;
  /** Starts it again on the same port after {@link Postgres.halt}. */
  resume(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[]))
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions[0] === undefined) throw new Error(`no PostgreSQL server under ${root}`);
  return join(root, versions[0], 'bin');
}

async function serverUser(): Promise<{ name: string; uid: number; gid: number }> {
  for (const name of ['postgres', 'nobody']) {
    try {
      const { stdout } = await run('id', ['-u', name]);
      const uid = Number(stdout.trim());
      const gid = Number((await run('id', ['-g', name])).stdout.trim());
      return { name, uid, gid };
    } catch {
      // next candidate
    }
  }
  throw new Error('no unprivileged user to run PostgreSQL as');
}

export async function startPostgres(): Promise<Postgres> {
  const bin = await binDir();
  const user = await serverUser();
  const dir = await mkdtemp(join(tmpdir(), 'o2mp-pg-'));
  await chown(dir, user.uid, user.gid);
  const port = (await freePorts(1))[0]!;
  const asUser = (command: string, args: string[]) =>
    userInfo().uid === 0
      ? run('runuser', ['-u', user.name, '--', join(bin, command), ...args], { cwd: dir })
      : run(join(bin, command), args, { cwd: dir });
  const data = join(dir, 'data');
  await asUser('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const ctl = (action: 'start' | 'stop') =>
    action === 'start'
      ? asUser('pg_ctl', [
          '-D',
          data,
          '-o',
          `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
          '-l',
          join(dir, 'log'),
          '-w',
          'start',
        ])
      : asUser('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  await ctl('start');
  const psql = (database: string, statement: string) =>
    asUser('psql', [
      '-h',
      dir,
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      database,
      '-AtXq',
      '-c',
      statement,
    ]);
  await psql('postgres', 'CREATE DATABASE tokens');
  return {
    port,
    dir,
    url: `postgresql://postgres@127.0.0.1:${port}/tokens`,
    sql: async (statement, database = 'tokens') => (await psql(database, statement)).stdout.trim(),
    halt: async () => {
      await ctl('stop');
    },
    resume: async () => {
      await ctl('start');
    },
    stop: async () => {
      await ctl('stop').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

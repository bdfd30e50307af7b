/**
 * Moving tokens between stores with the built CLI, and the daemon on a PostgreSQL store: what an
 * operator does when going from one machine to a fleet (docs/scale-out.md).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { PROXY_BIN, ProxyProcess } from '../support/proxy-process.js';

let pg: Postgres;
let dir: string;

beforeAll(async () => {
  [pg, dir] = await Promise.all([startPostgres(), mkdtemp(join(tmpdir(), 'o2mp-copy-'))]);
});
afterAll(async () => {
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PROXY_BIN, ...args]);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

const STORE = `[alice@example.com]
access_token = gAAAAABalice-access
access_token_expiry = 1767225600
refresh_token = gAAAAABalice-refresh
token_salt = YWxpY2Utc2FsdA==
token_iterations = 1200000

[bob@example.com]
refresh_token = gAAAAABbob-refresh
token_salt = Ym9iLXNhbHQ=
token_iterations = 1200000
last_activity = 1767220000
`;

describe('tokens copy', () => {
  it('copies a file store to PostgreSQL and back, as stored, and changes nothing the second time', async () => {
    const file = join(dir, 'tokens.ini');
    await writeFile(file, STORE, { mode: 0o600 });

    const first = await cli(['tokens', 'copy', '--from', file, '--to', pg.url]);
    expect(first.output).toContain('Copied 2 account(s)');
    expect(first.code).toBe(0);
    expect(
      await pg.sql(
        "SELECT account || ' ' || refresh_token FROM oauth2_mail_proxy_tokens ORDER BY account",
      ),
    ).toBe('alice@example.com gAAAAABalice-refresh\nbob@example.com gAAAAABbob-refresh');

    const again = await cli(['tokens', 'copy', '--from', file, '--to', pg.url]);
    expect(again.output).toContain('Copied 0 account(s)');
    expect(again.output).toContain('2 already there unchanged');

    const back = join(dir, 'back.ini');
    const home = await cli(['tokens', 'copy', '--from', pg.url, '--to', back]);
    expect(home.code).toBe(0);
    expect(await readFile(back, 'utf8')).toBe(`${STORE}\n`); // configparser's trailing blank line
  });

  it('names the setting when a store cannot be opened', async () => {
    const result = await cli([
      'tokens',
      'copy',
      '--from',
      join(dir, 'tokens.ini'),
      '--to',
      'postgresql://postgres:secret@127.0.0.1:1/tokens',
    ]);
    expect(result.code).toBe(2);
    expect(result.output).toContain('--cache-store (or cache_store) postgresql://postgres:***@');
    expect(result.output).not.toContain('secret');
  });
});

describe('the daemon on a PostgreSQL store', () => {
  const config = (port: number) =>
    `[IMAP-${port}]\nserver_address = 127.0.0.1\nserver_port = 1\nlocal_address = 127.0.0.1\n`;

  it('starts with --cache-store postgresql://… and logs where, without a password', async () => {
    const [port] = await freePorts(1);
    const proxy = await ProxyProcess.start({
      dir,
      config: config(port!),
      args: ['--cache-store', pg.url.replace('postgres@', 'postgres:pw@')],
    });
    await proxy.ready();
    const ready = proxy.events().find((event) => event.event === 'ready');
    expect(ready?.tokenStore).toBe(pg.url.replace('postgres@', 'postgres:***@'));
    expect(proxy.output).not.toContain(':pw@');
    expect(await proxy.stop()).toBe(0);
  });

  it('refuses to start on a database it cannot reach, naming the setting', async () => {
    const [port] = await freePorts(1);
    const proxy = await ProxyProcess.start({
      dir,
      config: config(port!),
      args: ['--cache-store', 'postgresql://postgres@127.0.0.1:1/tokens'],
    });
    expect(await proxy.exit()).toBe(2);
    expect(proxy.output).toMatch(/--cache-store \(or cache_store\).*PostgreSQL cannot be reached/);
  });
});

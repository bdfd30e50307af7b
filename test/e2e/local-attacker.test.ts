/**
 * What another local user can plant or read: a socket of their own at the control-socket path
 * (to collect sign-in codes and passwords), a look at the log file, `status` against the owner's
 * daemon. The proxy and its CLI must refuse to talk to what is not theirs, and say why in words.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_BIN, ProxyProcess } from '../support/proxy-process.js';
import { World } from '../support/world.js';

const run = promisify(execFile);

let world: World;
/** A directory every user may write to, sticky like /tmp: where the attacker plants things. */
let shared: string;
let impostor: ChildProcess | undefined;
/** What the impostor's socket received. */
let stolen = '';

beforeAll(async () => {
  world = await World.start();
  shared = await mkdtemp(join(tmpdir(), 'omp-shared-'));
  await chmod(shared, 0o1777);
});

afterEach(() => {
  impostor?.kill();
  impostor = undefined;
});

afterAll(async () => {
  await world?.stop();
  if (shared) await rm(shared, { recursive: true, force: true });
});

/** User `nobody` listens on `path`, answering every request as a daemon would, and keeps what it gets. */
async function plantSocket(path: string): Promise<void> {
  stolen = '';
  const script = `
    const net = require('node:net');
    net.createServer((s) => {
      s.on('data', (d) => process.stdout.write(d));
      s.end(JSON.stringify({ done: true, ok: true, flow: 'code', url: 'https://evil.example/sign-in' }) + '\\n');
    }).listen(${JSON.stringify(path)}, () => process.stderr.write('listening\\n'));`;
  impostor = spawn('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script], {
    stdio: 'pipe',
  });
  impostor.stdout?.on('data', (chunk: Buffer) => (stolen += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    impostor?.stderr?.once('data', () => resolve());
    impostor?.once('exit', (code) => reject(new Error(`impostor exited ${code}`)));
  });
  expect((await stat(path)).uid).toBe(65534);
}

/** Waits until the log file says `pattern`; fails after 15 s. */
async function logSays(path: string, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (pattern.test(text)) return;
    if (Date.now() > deadline) throw new Error(`${path} never said ${pattern}: ${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a socket planted at the control-socket path by another user', () => {
  it('authorize refuses to talk to it and says whose it is; nothing reaches it', async () => {
    const dir = await mkdtemp(join(shared, 'authorize-'));
    await chmod(dir, 0o1777);
    await plantSocket(join(dir, 'control.sock'));
    const files = { configFile: join(dir, 'config.ini'), tokenStore: join(dir, 'tokens.ini') };
    await writeFile(files.configFile, world.config());
    const cli = ProxyProcess.command(['authorize', 'john.smith@example.com'], files);
    cli.type('whatever was pasted\n');
    expect(await cli.exit()).toBe(1);
    expect(cli.output).toContain('belongs to user 65534');
    expect(cli.output).not.toContain('evil.example');
    expect(stolen).toBe('');
  }, 30_000);

  it('the daemon says the socket is foreign, not that another proxy is running', async () => {
    const dir = await mkdtemp(join(shared, 'daemon-'));
    await chmod(dir, 0o1777);
    // The store itself is ours, so only the socket is in question.
    await writeFile(join(dir, 'tokens.ini'), '', { mode: 0o600 });
    await plantSocket(join(dir, 'control.sock'));
    const proxy = await ProxyProcess.start({ dir, config: world.config() });
    expect(await proxy.exit()).toBe(3);
    expect(proxy.output).toContain('belongs to user 65534');
    expect(proxy.output).not.toContain('already running');
    expect(stolen).toBe('');
  }, 30_000);

  it('a stale socket of our own (a crashed daemon) is replaced, and the log says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omp-stale-'));
    const path = join(dir, 'control.sock');
    // Bound and never listened on: what a killed daemon leaves behind.
    await run('python3', [
      '-c',
      `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`,
    ]);
    const proxy = await ProxyProcess.start({ dir, config: world.config() });
    try {
      await proxy.ready();
      expect(proxy.output).toContain('stale control socket');
    } finally {
      await proxy.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe("the owner's daemon, seen by another user", () => {
  it('status by another user says permission denied, without a stack trace', async () => {
    const proxy = await world.startProxyIn('status', world.config());
    const socket = join(world.dir, 'status', 'control.sock');
    const result = await run('runuser', [
      '-u',
      'nobody',
      '--',
      process.execPath,
      PROXY_BIN,
      'status',
      '--control-socket',
      socket,
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('permission denied on the control socket');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(proxy.child.exitCode).toBeNull();
    await proxy.stop();
  }, 30_000);

  it('--log-file is created 0600, and an existing one others can read is warned about', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omp-logfile-'));
    const logFile = join(dir, 'proxy.log');
    const first = await ProxyProcess.start({
      dir,
      config: world.config(),
      args: ['--log-file', logFile],
    });
    await logSays(logFile, /"event":"ready"/);
    await first.stop();
    expect((await stat(logFile)).mode & 0o777).toBe(0o600);

    await chmod(logFile, 0o644);
    const second = await ProxyProcess.start({
      dir,
      config: world.config(),
      args: ['--log-file', logFile],
    });
    await logSays(logFile, /proxy\.log is readable by other users \(mode 644\)/);
    await second.stop();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);
});

describe('a token store where other users can create files', () => {
  it('a symlink planted at its path: the daemon refuses to start, and the file it points to is untouched', async () => {
    const dir = await mkdtemp(join(shared, 'symlink-'));
    await chmod(dir, 0o1777);
    const victim = join(world.dir, 'victim.txt');
    await writeFile(victim, 'precious\n');
    await run('runuser', ['-u', 'nobody', '--', 'ln', '-s', victim, join(dir, 'tokens.ini')]);
    const proxy = await ProxyProcess.start({ dir, config: world.config() });
    expect(await proxy.exit()).toBe(2);
    expect(proxy.output).toContain('is a symbolic link');
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
  }, 30_000);

  it('a directory anyone may write to, not sticky: refused, whoever owns the store', async () => {
    const dir = await mkdtemp(join(shared, 'open-'));
    await chmod(dir, 0o777);
    await writeFile(join(dir, 'tokens.ini'), '', { mode: 0o600 });
    const proxy = await ProxyProcess.start({ dir, config: world.config() });
    expect(await proxy.exit()).toBe(2);
    expect(proxy.output).toMatch(/other users can write to .* \(mode 777\)/);
  }, 30_000);

  it('a sticky directory and a store of our own: it starts, with a warning', async () => {
    const dir = await mkdtemp(join(shared, 'sticky-'));
    await chmod(dir, 0o1777);
    await writeFile(join(dir, 'tokens.ini'), '', { mode: 0o600 });
    const proxy = await ProxyProcess.start({ dir, config: world.config() });
    try {
      await proxy.ready();
      expect(proxy.output).toContain('where other users can create files (mode 1777)');
    } finally {
      await proxy.stop();
    }
  }, 30_000);
});

describe('malformed control requests', () => {
  it('get a plain "malformed request", never the text of a TypeError', async () => {
    const proxy = await world.startProxyIn('malformed', world.config());
    const socket = join(world.dir, 'malformed', 'control.sock');
    const ask = (line: string): Promise<string> =>
      new Promise((resolve, reject) => {
        let answer = '';
        const client = net.connect(socket, () => client.write(`${line}\n`));
        client.on('data', (chunk: Buffer) => (answer += chunk.toString()));
        client.once('error', reject);
        client.once('close', () => resolve(answer));
      });
    for (const request of [
      'null',
      '[]',
      '"status"',
      '{"op":"authorize"}',
      '{"op":"complete","account":5}',
    ]) {
      const answer = await ask(request);
      expect(answer, request).toMatch(/"ok":false/);
      expect(answer, request).toContain('malformed request');
      expect(answer, request).not.toMatch(/TypeError|Cannot read|undefined/);
    }
    expect(proxy.child.exitCode).toBeNull();
    await proxy.stop();
  }, 30_000);
});

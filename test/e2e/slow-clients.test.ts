/**
 * Clients that connect and dawdle before logging in: a thousand that trickle a byte every two
 * seconds (so the idle clock never fires) must not keep a real login out, and are cut at the login
 * deadline; a thousand connections against a daemon allowed 256 descriptors leave it up and serving.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unexpectedErrors } from '../support/faults/daemon-log.js';
import { loginReply } from '../support/faults/imap-steps.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const run = promisify(execFile);

const CLIENTS = 1_000;
const DEADLINE_S = 15;
/** How long a client must have dawdled before a full proxy sends it away for a newer one. */
const DAWDLING_S = 5;
const TRICKLE_INTERVAL_MS = 2_000;

let world: World;
let proxy: ProxyProcess;

beforeAll(async () => {
  world = await World.start();
  await world.seedTokens();
  proxy = await world.startProxy({ args: ['--login-deadline', String(DEADLINE_S)] });
  await proxy.ready();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

/** A client that reads the greeting, then sends one byte of a command every interval. */
interface Trickler {
  readonly greeted: Promise<void>;
  /** Milliseconds from its connect to the proxy's close; undefined while open. */
  closedAfterMs?: number;
  readonly socket: net.Socket;
}

function trickle(port: number): Trickler {
  const started = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const self: Trickler = {
    socket,
    greeted: new Promise((resolve) => socket.once('data', () => resolve())),
  };
  const drip = setInterval(() => socket.write('x'), TRICKLE_INTERVAL_MS);
  socket.once('close', () => {
    clearInterval(drip);
    self.closedAfterMs = Date.now() - started;
  });
  return self;
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

describe('slow clients before login', () => {
  it('a thousand tricklers leave room for a real login, and are cut at the login deadline', async () => {
    const tricklers = Array.from({ length: CLIENTS }, () => trickle(world.imapPort));
    await Promise.all(tricklers.map((t) => t.greeted));
    await new Promise((r) => setTimeout(r, (DAWDLING_S + 1) * 1000));

    // Without room made for it, the login is refused or waits for the first trickler cut at the
    // deadline, some 9 s from now; the bound stays under that, with a margin for a loaded machine.
    const roomByDeadlineMs = (DEADLINE_S - DAWDLING_S - 1) * 1000;
    const started = Date.now();
    expect(await loginReply(world.imapPort, USER, PASSWORD, roomByDeadlineMs)).toMatch(/^a1 OK /);
    expect(Date.now() - started).toBeLessThan(roomByDeadlineMs - 1_000);
    // The proxy made room by sending away one trickler (the oldest), not many.
    expect(tricklers.filter((t) => t.closedAfterMs !== undefined).length).toBeLessThanOrEqual(2);

    await waitUntil(() => tricklers.every((t) => t.closedAfterMs !== undefined), 30_000);
    const cut = tricklers.map((t) => t.closedAfterMs ?? Infinity);
    expect(Math.max(...cut)).toBeLessThan((DEADLINE_S + 5) * 1000);
    expect(cut.filter((ms) => ms < (DEADLINE_S - 1) * 1000).length).toBeLessThanOrEqual(2);
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
    expect(unexpectedErrors(proxy)).toEqual([]);
  }, 90_000);

  it('a thousand connections against 256 descriptors: the daemon stays up and serves again', async () => {
    await run('prlimit', [`--pid=${proxy.child.pid}`, '--nofile=256:256']);
    const sockets = Array.from({ length: CLIENTS }, () => {
      const socket = net.connect(world.imapPort, '127.0.0.1');
      socket.on('error', () => undefined);
      return socket;
    });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(proxy.child.exitCode).toBeNull();
    for (const socket of sockets) socket.destroy();
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await loginReply(world.imapPort, USER, PASSWORD, 15_000)).toMatch(/^a1 OK /);
    expect(proxy.child.exitCode).toBeNull();
  }, 60_000);
});

/**
 * The HAProxy test peer works on its own, with plain TCP servers behind it: it spreads
 * connections over the servers, sends the PROXY header it was asked for, and its health checks
 * take a dead server out and put it back. The fleet tests build on these facts.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { freePorts } from '../peers/free-ports.js';
import { startHaproxy, type Haproxy } from '../peers/haproxy.js';

const PROXY_V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'binary');

/** A server that answers each connection with its name and remembers the first bytes it got. */
async function namedServer(name: string, port: number, firstBytes: Buffer[]): Promise<Server> {
  const server = createServer((socket: Socket) => {
    socket.once('data', (chunk: Buffer) => firstBytes.push(chunk));
    socket.on('error', () => undefined);
    socket.end(`${name}\n`);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

function ask(port: number, send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(port, '127.0.0.1', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

describe('HAProxy test peer', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const undo of cleanup.splice(0).reverse()) await undo();
  });

  async function start(
    sendProxy: 'v1' | 'v2' | undefined,
  ): Promise<{ haproxy: Haproxy; servers: Server[]; firstBytes: Buffer[]; ports: number[] }> {
    const ports = await freePorts(2);
    const firstBytes: Buffer[] = [];
    const servers = [
      await namedServer('one', ports[0]!, firstBytes),
      await namedServer('two', ports[1]!, firstBytes),
    ];
    cleanup.push(async () => {
      for (const server of servers) await new Promise((r) => server.close(r));
    });
    const haproxy = await startHaproxy([
      { name: 'imap', servers: ports.map((port) => ({ port })), sendProxy },
    ]);
    cleanup.push(() => haproxy.stop());
    await haproxy.waitFor('imap', ['UP', 'UP']);
    return { haproxy, servers, firstBytes, ports };
  }

  it('spreads connections round-robin over the servers', async () => {
    const { haproxy } = await start(undefined);
    const answers = [];
    for (let i = 0; i < 4; i += 1) answers.push((await ask(haproxy.ports.imap!, 'hi\n')).trim());
    expect(answers.sort()).toEqual(['one', 'one', 'two', 'two']);
  });

  it('sends a PROXY v1 header naming the real client', async () => {
    const { haproxy, firstBytes } = await start('v1');
    const before = firstBytes.length;
    await ask(haproxy.ports.imap!, 'hi\n');
    const header = Buffer.concat(firstBytes.slice(before)).toString('latin1');
    expect(header).toMatch(/^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n/);
  });

  it('sends a PROXY v2 header', async () => {
    const { haproxy, firstBytes } = await start('v2');
    const before = firstBytes.length;
    await ask(haproxy.ports.imap!, 'hi\n');
    const received = Buffer.concat(firstBytes.slice(before));
    expect(received.subarray(0, 12)).toEqual(PROXY_V2_SIGNATURE);
  });

  it('takes a dead server out of the rotation and puts it back', async () => {
    const { haproxy, servers, firstBytes, ports } = await start(undefined);
    await new Promise((r) => servers[1]!.close(r));
    await haproxy.waitFor('imap', ['UP', 'DOWN']);
    for (let i = 0; i < 3; i += 1) expect((await ask(haproxy.ports.imap!)).trim()).toBe('one');

    servers[1] = await namedServer('two', ports[1]!, firstBytes);
    await haproxy.waitFor('imap', ['UP', 'UP']);
  });
});

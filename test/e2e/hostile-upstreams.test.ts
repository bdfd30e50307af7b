/**
 * Upstreams that never stop talking before the login ends: an endless SMTP greeting, an endless
 * EHLO reply (both in clear text before STARTTLS), endless untagged IMAP lines after AUTHENTICATE.
 * The daemon must cut each after a bounded amount, answer its client with a temporary failure,
 * keep its own memory flat, and go on serving everyone else.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import tls from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { Conversation } from '../support/conversation.js';
import { makeFaultCertificates } from '../support/faults/certificates.js';
import { unexpectedErrors } from '../support/faults/daemon-log.js';
import { FloodingServer } from '../support/faults/flooding-servers.js';
import { finalReply, greeted, loginReply } from '../support/faults/imap-steps.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/** What the daemon may grow by while a server floods it: far below what the servers send. */
const MAX_GROWTH_BYTES = 64 * 1024 * 1024;
/** What the proxy may read of one flood before it hangs up (its limit plus socket buffers). */
const MAX_READ_BYTES = 16 * 1024 * 1024;

let world: World;
let certsDir: string;
let greetingFlood: FloodingServer;
let ehloFlood: FloodingServer;
let untaggedFlood: FloodingServer;
let proxy: ProxyProcess;
let ports: number[];
/** Says 220 to STARTTLS, then, in a later packet, plain text where the handshake should be. */
let injector: net.Server;
/** An implicit-TLS SMTP server that greets and counts the connections held open to it. */
let counting: tls.Server;
const held = new Set<net.Socket>();

beforeAll(async () => {
  world = await World.start();
  certsDir = await mkdtemp(join(tmpdir(), 'omp-flood-certs-'));
  const certs = await makeFaultCertificates(certsDir);
  [greetingFlood, ehloFlood, untaggedFlood] = await Promise.all([
    FloodingServer.start({ line: `220-${'g'.repeat(900)}` }),
    FloodingServer.start({
      greeting: '220 mail ESMTP',
      after: /^EHLO/,
      line: `250-${'e'.repeat(900)}`,
    }),
    FloodingServer.start({
      tls: certs.good,
      greeting: '* OK ready',
      after: /AUTHENTICATE/,
      line: `* ${'u'.repeat(900)}`,
    }),
  ]);
  injector = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('220 mail ESMTP\r\n');
    socket.on('data', (data: Buffer) => {
      const line = data.toString();
      if (/^EHLO/i.test(line)) socket.write('250-mail\r\n250 STARTTLS\r\n');
      if (/^STARTTLS/i.test(line)) {
        socket.write('220 2.0.0 go ahead\r\n');
        setTimeout(() => socket.write('250 injected after the 220\r\n'), 100);
      }
    });
  });
  await new Promise<void>((resolve) => injector.listen(0, '127.0.0.1', resolve));
  counting = tls.createServer({ key: certs.good.key, cert: certs.good.cert }, (socket) => {
    held.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => held.delete(socket));
    socket.write('220 mail ESMTP\r\n');
  });
  await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
  await world.seedTokens();
  ports = await freePorts(5);
  const section = (port: number, protocol: string, upstream: number, starttls: boolean): string =>
    [
      `[${protocol}-${port}]`,
      'server_address = localhost',
      `server_port = ${upstream}`,
      `server_ca_file = ${certs.caFile}`,
      ...(starttls ? ['server_starttls = True'] : []),
      '',
    ].join('\n');
  proxy = await world.startProxy({
    config: world.config(
      [
        section(ports[0]!, 'SMTP', greetingFlood.port, true),
        section(ports[1]!, 'SMTP', ehloFlood.port, true),
        section(ports[2]!, 'IMAP', untaggedFlood.port, false),
        section(ports[3]!, 'SMTP', (injector.address() as net.AddressInfo).port, true),
        section(ports[4]!, 'SMTP', (counting.address() as net.AddressInfo).port, false),
      ].join('\n'),
    ),
    args: ['--authorisation-wait', '0', '--upstream-timeout', '10'],
  });
  await proxy.ready();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.allSettled([greetingFlood, ehloFlood, untaggedFlood].map((s) => s?.close()));
  injector?.close();
  for (const socket of held) socket.destroy();
  counting?.close();
  await world?.stop();
  if (certsDir) await rm(certsDir, { recursive: true, force: true });
});

/** The daemon's resident memory and its peak so far, in bytes. */
async function memory(): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${proxy.child.pid}/status`, 'utf8');
  const kib = (name: string): number =>
    Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

async function stillServing(): Promise<void> {
  expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  expect(proxy.child.exitCode).toBeNull();
  expect(unexpectedErrors(proxy)).toEqual([]);
}

describe('an upstream that never stops talking before the login', () => {
  it('SMTP, an endless greeting in clear text: 421 to the client, bounded memory, still serving', async () => {
    const before = await memory();
    const client = await Conversation.connect(ports[0]!);
    expect(await client.line(30_000)).toMatch(/^421 4\.4\.2 .*over-long reply/);
    client.close();
    expect(await greetingFlood.cutAfter()).toBeLessThan(MAX_READ_BYTES);
    expect((await memory()).peak - before.rss).toBeLessThan(MAX_GROWTH_BYTES);
    await stillServing();
  }, 60_000);

  it('SMTP, an endless EHLO reply before STARTTLS: 421 to the client, bounded memory, still serving', async () => {
    const before = await memory();
    const client = await Conversation.connect(ports[1]!);
    expect(await client.line(30_000)).toMatch(/^421 4\.4\.2 .*over-long reply/);
    client.close();
    expect(await ehloFlood.cutAfter()).toBeLessThan(MAX_READ_BYTES);
    expect((await memory()).peak - before.rss).toBeLessThan(MAX_GROWTH_BYTES);
    await stillServing();
  }, 60_000);

  it('IMAP, endless untagged lines after AUTHENTICATE: BYE [UNAVAILABLE], bounded memory, still serving', async () => {
    const before = await memory();
    const client = await greeted(ports[2]!);
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1', 30_000)).toMatch(/^\* BYE \[UNAVAILABLE\] .*more than/);
    client.close();
    expect(await untaggedFlood.cutAfter()).toBeLessThan(MAX_READ_BYTES);
    expect((await memory()).peak - before.rss).toBeLessThan(MAX_GROWTH_BYTES);
    await stillServing();
  }, 60_000);

  it('SMTP, plain text in a later packet after the STARTTLS 220: named as such, not as a certificate', async () => {
    const client = await Conversation.connect(ports[3]!);
    const reply = await client.line(30_000);
    expect(reply).toMatch(/^421 4\.4\.2 .*was not TLS/);
    expect(reply).not.toContain('certificate not trusted');
    client.close();
    await stillServing();
  }, 60_000);

  it('SMTP, 150 silent clients before login: at most 100 upstream connections held for them', async () => {
    const clients = await Promise.all(
      Array.from({ length: 150 }, () => Conversation.connect(ports[4]!)),
    );
    const greetings = await Promise.all(clients.map((client) => client.line(30_000)));
    expect(held.size).toBeLessThanOrEqual(100);
    expect(greetings.filter((line) => line.startsWith('220 ')).length).toBeLessThanOrEqual(100);
    expect(
      greetings.filter((line) => /^421 4\.7\.0 .*Too many connections/.test(line)).length,
    ).toBe(150 - greetings.filter((line) => line.startsWith('220 ')).length);
    for (const client of clients) client.close();
    await stillServing();
  }, 60_000);
});

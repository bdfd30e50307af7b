/**
 * Behind a load balancer: HAProxy (the real one) sends a PROXY header naming the client, and the
 * proxy logs, limits and judges that client, not the balancer. Only the addresses listed in
 * `proxy_protocol_from` may say who the client is; anyone else sending a header is hung up on,
 * and a listed balancer that sends none is refused.
 */
import tls from 'node:tls';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa, type TestCa } from '../peers/certs.js';
import { startHaproxy, type Haproxy } from '../peers/haproxy.js';
import { Conversation } from '../support/conversation.js';
import { finalReply } from '../support/faults/imap-steps.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

let world: World;
let proxy: ProxyProcess;
let haproxy: Haproxy;
let ca: TestCa;

/** The proxy's listeners: behind the balancer (plain and TLS IMAP, POP3), and one without it. */
const port = {
  imap: () => world.ports[0]!,
  pop3: () => world.ports[1]!,
  imaps: () => world.ports[2]!,
  direct: () => world.ports[3]!,
};

function section(kind: 'IMAP' | 'POP', localPort: number, upstream: number, extra: string[]) {
  return [
    `[${kind}-${localPort}]`,
    'server_address = localhost',
    `server_port = ${upstream}`,
    `server_ca_file = ${world.dovecot.caFile}`,
    ...extra,
    '',
  ].join('\n');
}

beforeAll(async () => {
  world = await World.start();
  await world.seedTokens();
  await mkdir(join(world.dir, 'ca'));
  ca = await makeTestCa(join(world.dir, 'ca'));
  const balancer = 'proxy_protocol_from = 127.0.0.1, ::1';
  const { imapsPort, pop3sPort } = world.dovecot;
  proxy = await world.startProxy({
    config: [
      section('IMAP', port.imap(), imapsPort, [balancer]),
      section('POP', port.pop3(), pop3sPort, [balancer]),
      section('IMAP', port.imaps(), imapsPort, [
        balancer,
        `local_certificate_path = ${ca.certFile}`,
        `local_key_path = ${ca.keyFile}`,
      ]),
      section('IMAP', port.direct(), imapsPort, []),
      world.accountSection(),
    ].join('\n'),
    args: ['--max-preauth-per-address', '2'],
  });
  await proxy.ready();
  haproxy = await startHaproxy([
    { name: 'imap', servers: [{ port: port.imap() }], sendProxy: 'v2' },
    { name: 'pop3', servers: [{ port: port.pop3() }], sendProxy: 'v1' },
    { name: 'imaps', servers: [{ port: port.imaps() }], sendProxy: 'v2' },
  ]);
  await Promise.all(['imap', 'pop3', 'imaps'].map((frontend) => haproxy.waitFor(frontend, ['UP'])));
}, 90_000);

afterAll(async () => {
  await haproxy?.stop();
  await proxy?.stop();
  await world?.stop();
});

/** The proxy's log lines of `event` that name `remote` as the client. */
function eventsFrom(event: string, remote: string): Array<Record<string, unknown>> {
  return proxy.events().filter((line) => line.event === event && line.remote === remote);
}

async function until<T>(probe: () => T | undefined, what: string): Promise<T> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    const found = probe();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never saw ${what}`);
}

describe('through HAProxy', () => {
  it('IMAP (PROXY v2): logs in, and the log names the real client, not the balancer', async () => {
    const client = await Conversation.connect(haproxy.ports.imap!, '127.0.0.2');
    await client.expect(/^\* OK /);
    client.send(`a1 LOGIN "${USER}" "wrong password"`);
    expect(await finalReply(client, 'a1')).toMatch(/^a1 NO /);
    client.send(`a2 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a2')).toMatch(/^a2 OK /);
    client.send('a3 SELECT INBOX');
    expect(await finalReply(client, 'a3')).toMatch(/^a3 OK /);
    client.close();

    const refused = await until(() => eventsFrom('login_refused', '127.0.0.2')[0], 'the refusal');
    expect(refused).toMatchObject({ user: USER, reason: 'bad-password' });
    await until(() => eventsFrom('disconnect', '127.0.0.2')[0], 'the session end');
  });

  it('POP3 (PROXY v1): logs in as the real client', async () => {
    const client = await Conversation.connect(haproxy.ports.pop3!, '127.0.0.3');
    await client.expect(/^\+OK /);
    client.send(`USER ${USER}`);
    await client.expect(/^\+OK/);
    client.send(`PASS ${PASSWORD}`);
    await client.expect(/^\+OK/);
    client.send('QUIT');
    await client.expect(/^\+OK/);
    await until(() => eventsFrom('disconnect', '127.0.0.3')[0], 'the session end');
  });

  it('implicit TLS: the header comes before the handshake, which then completes', async () => {
    const plain = await Conversation.connect(haproxy.ports.imaps!, '127.0.0.4');
    const socket = tls.connect({
      socket: plain.socket,
      servername: 'localhost',
      ca: await readFile(ca.caFile),
    });
    const client = new Conversation(socket);
    await client.expect(/^\* OK /);
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1')).toMatch(/^a1 OK /);
    client.close();
    await until(() => eventsFrom('disconnect', '127.0.0.4')[0], 'the session end');
  });
});

describe('the client a balancer names is the one judged', () => {
  /** Acts as the balancer on 127.0.0.1: a PROXY v1 header for `client`, then the conversation. */
  async function asBalancerFor(client: string): Promise<Conversation> {
    const conversation = await Conversation.connect(port.imap());
    conversation.sendRaw(`PROXY TCP4 ${client} 127.0.0.1 40000 ${port.imap()}\r\n`);
    return conversation;
  }

  it('a client on another machine may not send its password in clear text', async () => {
    const remote = await asBalancerFor('203.0.113.7');
    await remote.expect(/^\* OK /);
    remote.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(remote, 'a1')).toMatch(/^a1 NO .*clear text from another machine/);
    remote.close();
  });

  it('the limit on connections per address counts the real client', async () => {
    const first = await asBalancerFor('198.51.100.9');
    const second = await asBalancerFor('198.51.100.9');
    await first.expect(/^\* OK /);
    await second.expect(/^\* OK /);
    const third = await asBalancerFor('198.51.100.9');
    await third.expect(/^\* BYE .*[Tt]oo many/);
    // Another client behind the same balancer is not held back by the first one's connections.
    const other = await asBalancerFor('198.51.100.10');
    await other.expect(/^\* OK /);
    for (const conversation of [first, second, third, other]) conversation.close();
  });
});

describe('who may send a PROXY header', () => {
  it('a client that is not a listed balancer is hung up on, and the log says why', async () => {
    for (const header of [
      'PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n',
      Buffer.concat([
        Buffer.from('0d0a0d0a000d0a515549540a2111000c', 'hex'),
        Buffer.from([192, 0, 2, 1, 127, 0, 0, 1, 0, 1, 0, 2]),
      ]),
    ]) {
      const client = await Conversation.connect(port.direct(), '127.0.0.5');
      await client.expect(/^\* OK /);
      client.sendRaw(header);
      await client.closedByPeer();
    }
    const refusals = await until(() => {
      const lines = eventsFrom('proxy_header_refused', '127.0.0.5');
      return lines.length === 2 ? lines : undefined;
    }, 'two refusals');
    expect(String(refusals[0]!.msg)).toMatch(/not a trusted load balancer.*proxy_protocol_from/);
  });

  it('a listed balancer that sends no header gets no greeting and is refused', async () => {
    const client = await Conversation.connect(port.imap());
    client.send('a1 CAPABILITY');
    await client.closedByPeer();
    const refusal = await until(
      () =>
        proxy
          .events()
          .find(
            (line) =>
              line.event === 'proxy_header_refused' &&
              /did not start with a PROXY header/.test(String(line.reason)),
          ),
      'the refusal',
    );
    expect(refusal.msg).toMatch(/load balancer 127\.0\.0\.1.*proxy_protocol_from/);
  });
});

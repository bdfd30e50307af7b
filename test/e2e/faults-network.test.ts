/**
 * Fault injection on the wire, through the real daemon: upstreams that hang in the TLS handshake,
 * present a certificate for another host or one nobody signed, hang up in the middle of the login
 * or of a transfer; clients that vanish mid-literal, mid-SASL, mid-login and mid-transfer.
 *
 * Each case checks what the client sees, what the log says, that the token store is byte for byte
 * as it was, and that the daemon goes on serving everyone else.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeXoauth2 } from '../../src/proxy/sasl.js';
import { freePorts } from '../peers/free-ports.js';
import { Conversation } from '../support/conversation.js';
import { makeFaultCertificates, type FaultCertificates } from '../support/faults/certificates.js';
import { CuttingRelay } from '../support/faults/cutting-relay.js';
import { disconnectOf, eventsNamed, unexpectedErrors } from '../support/faults/daemon-log.js';
import {
  fetchMessage,
  finalReply,
  greeted,
  inboxSession,
  loginReply,
} from '../support/faults/imap-steps.js';
import { ScriptedTlsServer } from '../support/faults/scripted-tls-server.js';
import { SilentServer, TricklingServer } from '../support/faults/stalling-servers.js';
import { storeBytes, storedTokens } from '../support/faults/token-files.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, serverSection, USER, World } from '../support/world.js';

/** The daemon's upstream connect timeout; `run` has no option to change it. */
const UPSTREAM_CONNECT_TIMEOUT_S = 5;
const BIG_MESSAGE_BYTES = 6 * 1024 * 1024;
/** Connections before login the daemon admits at once; vanished clients must give theirs back. */
const PRE_AUTH_SLOTS = 6;

let world: World;
let certsDir: string;
let certs: FaultCertificates;
let silent: SilentServer;
let honest: ScriptedTlsServer;
let trickling: TricklingServer;
let wrongHost: ScriptedTlsServer;
let selfSigned: ScriptedTlsServer;
let scripted: ScriptedTlsServer;
let relay: CuttingRelay;
let proxy: ProxyProcess;
let bigUid: number;
let bigMessage: Buffer;
/** Local ports: silent, trickling, wrong host, self-signed, scripted IMAP, scripted POP3, scripted SMTP, relay. */
let ports: number[];
let storeBefore: Buffer | undefined;

beforeAll(async () => {
  world = await World.start();
  certsDir = await mkdtemp(join(tmpdir(), 'omp-fault-certs-'));
  certs = await makeFaultCertificates(certsDir);
  [silent, honest, wrongHost, selfSigned, scripted] = await Promise.all([
    SilentServer.start(),
    ScriptedTlsServer.start(certs.good),
    ScriptedTlsServer.start(certs.wrongHost),
    ScriptedTlsServer.start(certs.selfSigned),
    ScriptedTlsServer.start(certs.good),
  ]);
  honest.script = { greeting: '* OK honest but slow', hangUp: /^$/, how: 'close' };
  trickling = await TricklingServer.start(honest.port, 1_000);
  relay = await CuttingRelay.start(certs.good, {
    port: world.dovecot.imapsPort,
    ca: await readFile(world.dovecot.caFile, 'utf8'),
  });

  bigMessage = Buffer.concat([
    Buffer.from('Subject: big transfer\r\n\r\n'),
    Buffer.from(
      randomBytes(BIG_MESSAGE_BYTES / 2)
        .toString('hex')
        .replace(/.{76}/g, '$&\r\n'),
    ),
  ]);
  await world.dovecot.deliver(USER, Buffer.from('Subject: small\r\n\r\nsmall one\r\n'));
  await world.dovecot.deliver(USER, bigMessage);
  await world.seedTokens();

  ports = await freePorts(8);
  const section = (index: number, protocol: 'IMAP' | 'POP' | 'SMTP', upstreamPort: number) =>
    serverSection(protocol, ports[index]!, upstreamPort, certs.caFile);
  const faulty = [
    section(0, 'IMAP', silent.port),
    section(1, 'IMAP', trickling.port),
    section(2, 'IMAP', wrongHost.port),
    section(3, 'IMAP', selfSigned.port),
    section(4, 'IMAP', scripted.port),
    section(5, 'POP', scripted.port),
    section(6, 'SMTP', scripted.port),
    section(7, 'IMAP', relay.port),
  ].join('\n');
  proxy = await world.startProxy({
    config: world.config(faulty),
    args: [
      '--authorisation-wait',
      '0',
      '--debug',
      '--max-preauth-connections',
      String(PRE_AUTH_SLOTS),
      '--upstream-timeout',
      String(UPSTREAM_CONNECT_TIMEOUT_S),
    ],
  });
  await proxy.ready();

  const session = await inboxSession(world.imapPort, USER, PASSWORD);
  session.send('s1 UID SEARCH LARGER 1000000');
  const [found] = (await session.line()).match(/\d+$/) ?? [];
  bigUid = Number(found);
  await finalReply(session, 's1');
  session.close();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.allSettled(
    [silent, honest, trickling, wrongHost, selfSigned, scripted, relay].map((server) =>
      server?.close(),
    ),
  );
  await world?.stop();
  if (certsDir) await rm(certsDir, { recursive: true, force: true });
});

beforeEach(async () => {
  world.idp.resetTokenRequests();
  storeBefore = await storeBytes(world.tokenStore);
});

afterEach(async () => {
  // Whatever the fault, the tokens on disk are exactly as they were, and nothing escaped.
  expect(await storeBytes(world.tokenStore)).toEqual(storeBefore);
  expect(unexpectedErrors(proxy)).toEqual([]);
  expect(proxy.child.exitCode).toBeNull();
});

/** The daemon still logs people in, through Dovecot, without asking the identity provider. */
async function stillServing(): Promise<void> {
  expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
  expect(world.idp.tokenRequests.total).toBe(0);
}

const port = (index: number): number => ports[index]!;

describe('an upstream that never finishes its TLS handshake', () => {
  it(
    `gets a BYE naming it after the ${UPSTREAM_CONNECT_TIMEOUT_S} s connect timeout, whether silent or trickling bytes`,
    async () => {
      const started = Date.now();
      const timed = async (localPort: number): Promise<{ reply: string; seconds: number }> => {
        const reply = await loginReply(
          localPort,
          USER,
          PASSWORD,
          (UPSTREAM_CONNECT_TIMEOUT_S + 10) * 1000,
        );
        return { reply, seconds: (Date.now() - started) / 1000 };
      };
      const hanging = Promise.all([timed(port(0)), timed(port(1))]);
      // Meanwhile everyone else is served as usual.
      await stillServing();
      const [fromSilent, fromTrickling] = await hanging;

      expect(fromSilent.reply).toBe(
        `* BYE [UNAVAILABLE] Cannot log in to localhost:${silent.port}: no answer within ${UPSTREAM_CONNECT_TIMEOUT_S} s. Try again later`,
      );
      expect(fromTrickling.reply).toBe(
        `* BYE [UNAVAILABLE] Cannot log in to localhost:${trickling.port}: no answer within ${UPSTREAM_CONNECT_TIMEOUT_S} s. Try again later`,
      );
      for (const { seconds } of [fromSilent, fromTrickling]) {
        expect(seconds).toBeGreaterThanOrEqual(UPSTREAM_CONNECT_TIMEOUT_S - 0.5);
        expect(seconds).toBeLessThan(UPSTREAM_CONNECT_TIMEOUT_S + 3);
      }
      expect(honest.handshakes).toBe(0);
      await vi.waitFor(() => expect([silent.open, trickling.open]).toEqual([0, 0]));
      await vi.waitFor(() =>
        expect(
          eventsNamed(proxy, 'upstream_failed').filter((event) => event.kind === 'timeout'),
        ).toHaveLength(2),
      );
    },
    (UPSTREAM_CONNECT_TIMEOUT_S + 20) * 1000,
  );
});

describe('an upstream whose certificate must not be trusted', () => {
  it('for another host name, though signed by the trusted CA: BYE, and no byte of a login is sent', async () => {
    const reply = await loginReply(port(2), USER, PASSWORD);
    expect(reply).toMatch(
      new RegExp(
        `^\\* BYE \\[UNAVAILABLE\\] Cannot log in to localhost:${wrongHost.port}: its TLS certificate is for another host name \\(ERR_TLS_CERT_ALTNAME_INVALID\\); check server_address$`,
      ),
    );
    expect(wrongHost.accepted).toBe(1);
    expect(wrongHost.handshakes).toBe(0);
    expect(wrongHost.received).toEqual([]);
    await vi.waitFor(() =>
      expect(eventsNamed(proxy, 'upstream_failed').at(-1)).toMatchObject({ kind: 'tls' }),
    );
    await stillServing();
  });

  it('signed by itself: BYE saying the certificate is not trusted and pointing at server_ca_file', async () => {
    const reply = await loginReply(port(3), USER, PASSWORD);
    expect(reply).toMatch(
      new RegExp(
        `^\\* BYE \\[UNAVAILABLE\\] Cannot log in to localhost:${selfSigned.port}: TLS certificate not trusted \\(DEPTH_ZERO_SELF_SIGNED_CERT\\)`,
      ),
    );
    expect(selfSigned.handshakes).toBe(0);
    expect(selfSigned.received).toEqual([]);
    await vi.waitFor(() =>
      expect(eventsNamed(proxy, 'upstream_failed').at(-1)).toMatchObject({ kind: 'tls' }),
    );
    // The fix is a setting: the reply names it, as the configuration file spells it.
    expect(reply).toContain('server_ca_file');
  });
});

describe('an upstream that hangs up in the middle of the login', () => {
  const imapGreeting = '* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready';

  it.each([
    [
      'after its greeting',
      'after-greeting' as const,
      'close' as const,
      'the server closed the connection during login',
    ],
    [
      'after reading AUTHENTICATE XOAUTH2',
      /^P1 AUTHENTICATE XOAUTH2 /,
      'close' as const,
      'the server closed the connection during login',
    ],
    [
      'with a reset after reading AUTHENTICATE XOAUTH2',
      /^P1 AUTHENTICATE XOAUTH2 /,
      'reset' as const,
      'connection closed by the server',
    ],
  ])(
    'IMAP, %s: BYE [UNAVAILABLE] naming the server; the token is neither dropped nor distrusted',
    async (_when, hangUp, how, why) => {
      scripted.script = { greeting: imapGreeting, hangUp, how };
      const before = scripted.received.length;
      expect(await loginReply(port(4), USER, PASSWORD)).toBe(
        `* BYE [UNAVAILABLE] Cannot log in to localhost:${scripted.port}: ${why}. Try again later`,
      );
      const seen = scripted.received.slice(before);
      if (hangUp === 'after-greeting') expect(seen).toEqual([]);
      else
        expect(seen).toEqual([
          `P1 AUTHENTICATE XOAUTH2 ${encodeXoauth2(USER, await currentAccessToken())}`,
        ]);
      await vi.waitFor(() =>
        expect(eventsNamed(proxy, 'upstream_failed').at(-1)).toMatchObject({ kind: 'closed' }),
      );
      await stillServing();
    },
  );

  it('POP3, after reading AUTH XOAUTH2: -ERR [SYS/TEMP] naming the server', async () => {
    scripted.script = { greeting: '+OK ready', hangUp: /^AUTH XOAUTH2 /, how: 'close' };
    const client = await Conversation.connect(port(5));
    try {
      await client.expect(/^\+OK /);
      client.send(`USER ${USER}`);
      await client.expect(/^\+OK/);
      client.send(`PASS ${PASSWORD}`);
      const reply = await client.line(20_000);
      expect(reply).toMatch(
        new RegExp(
          `^-ERR \\[SYS/TEMP\\] .*Cannot log in to localhost:${scripted.port}: the server closed the connection during login. Try again later$`,
        ),
      );
      await client.closedByPeer();
    } finally {
      client.close();
    }
    await vi.waitFor(() =>
      expect(eventsNamed(proxy, 'upstream_failed').at(-1)).toMatchObject({ kind: 'closed' }),
    );
    await stillServing();
  });

  it('SMTP, after reading AUTH XOAUTH2: 421 4.4.2 naming the server, so the queue retries', async () => {
    scripted.script = {
      greeting: '220 mail.test ESMTP',
      replies: [[/^EHLO /, '250-mail.test\n250-AUTH XOAUTH2\n250 8BITMIME']],
      hangUp: /^AUTH XOAUTH2 /,
      how: 'close',
    };
    const client = await Conversation.connect(port(6));
    try {
      await client.expect(/^220 /);
      client.send('EHLO client.test');
      while (!(await client.line()).startsWith('250 ')) {
        // the extensions
      }
      client.send(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`);
      expect(await client.line(20_000)).toBe(
        `421 4.4.2 Lost the connection to localhost:${scripted.port}: the server closed the connection. Try again later`,
      );
      await client.closedByPeer();
    } finally {
      client.close();
    }
    await vi.waitFor(() =>
      expect(eventsNamed(proxy, 'upstream_failed').at(-1)).toMatchObject({ kind: 'closed' }),
    );
    await stillServing();
  });
});

describe('an upstream that goes away in the middle of a transfer', () => {
  it('closes that client only; another logged-in session and new logins carry on', async () => {
    const bystander = await inboxSession(world.imapPort, USER, PASSWORD);
    const victim = await inboxSession(port(7), USER, PASSWORD);
    try {
      relay.cutAfterServerBytes(1024 * 1024);
      const transfer = fetchMessage(victim, bigUid);
      await expect(transfer).rejects.toThrow(/connection closed/);
      expect(relay.cutCount).toBe(1);
      relay.disarm();

      bystander.send('b1 NOOP');
      expect(await finalReply(bystander, 'b1')).toMatch(/^b1 OK/);
      expect((await fetchMessage(bystander, bigUid)).equals(bigMessage)).toBe(true);
      const after = await inboxSession(port(7), USER, PASSWORD);
      expect((await fetchMessage(after, bigUid)).length).toBe(bigMessage.length);
      after.close();
    } finally {
      relay.disarm();
      bystander.close();
      victim.close();
    }
    // How much reached the client before the cut depends on scheduling (unsent bytes are dropped
    // with the reset), only that it was part of the message.
    await vi.waitFor(
      () =>
        expect(
          eventsNamed(proxy, 'disconnect').some(
            (event) =>
              event.account === USER &&
              Number(event.bytesToClient) > 0 &&
              Number(event.bytesToClient) < bigMessage.length,
          ),
        ).toBe(true),
      { timeout: 10_000 },
    );
    expect(world.idp.tokenRequests.total).toBe(0);
  });
});

describe('a client that vanishes', () => {
  // Each case connects from its own loopback address, so the log shows how its connection ended.
  it('in the middle of a LOGIN literal: the session ends quietly', async () => {
    const client = await greeted(world.imapPort, '127.0.0.11');
    client.send(`a1 LOGIN {${USER.length}}`);
    await client.expect(/^\+ /);
    client.sendRaw(USER.slice(0, 5));
    client.socket.resetAndDestroy();
    await vi.waitFor(() =>
      expect(disconnectOf(proxy, '127.0.0.11')).toMatchObject({ msg: 'closed before login' }),
    );
    await stillServing();
  });

  it('after the + of AUTHENTICATE PLAIN: the session ends quietly', async () => {
    const client = await greeted(world.imapPort, '127.0.0.12');
    client.send('a1 AUTHENTICATE PLAIN');
    await client.expect(/^\+/);
    client.sendRaw(Buffer.from(`\0${USER}\0`).toString('base64').slice(0, 8));
    client.socket.end();
    await vi.waitFor(() =>
      expect(disconnectOf(proxy, '127.0.0.12')).toMatchObject({ msg: 'closed before login' }),
    );
    await stillServing();
  });

  it('while the proxy logs it in upstream: its upstream connection is dropped, not left open', async () => {
    // The server greets a second late, so the client is gone well before the upstream login ends.
    relay.upstreamDelayMs = 1_000;
    try {
      const client = await greeted(port(7), '127.0.0.13');
      const upstreamOpened = relay.nextSession();
      client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
      await upstreamOpened;
      client.socket.resetAndDestroy();
      await vi.waitFor(() => expect(relay.open).toBe(0), { timeout: 10_000 });
      await vi.waitFor(() =>
        expect(disconnectOf(proxy, '127.0.0.13')).toMatchObject({ msg: 'closed before login' }),
      );
    } finally {
      relay.upstreamDelayMs = 0;
    }
    await stillServing();
  });

  it('in the middle of a large FETCH: its upstream connection is closed too', async () => {
    const client = await inboxSession(port(7), USER, PASSWORD, '127.0.0.14');
    client.send(`f1 UID FETCH ${bigUid} BODY.PEEK[]`);
    await client.bytes(512 * 1024);
    client.socket.resetAndDestroy();
    await vi.waitFor(() => expect(relay.open).toBe(0), { timeout: 10_000 });
    await vi.waitFor(() =>
      expect(disconnectOf(proxy, '127.0.0.14')).toMatchObject({
        msg: 'session ended',
        account: USER,
      }),
    );
    await stillServing();
  });

  it('leaves no connection slot taken: as many clients as the limit allows are greeted at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: PRE_AUTH_SLOTS }, () => Conversation.connect(world.imapPort)),
    );
    try {
      for (const client of clients) await client.expect(/^\* OK /);
    } finally {
      for (const client of clients) client.close();
    }
  });
});

/** The access token the seeded store holds, as the proxy sends it upstream. */
async function currentAccessToken(): Promise<string> {
  return (await storedTokens(world.tokenStore, USER, PASSWORD)).accessToken ?? '';
}

/**
 * The IMAP and POP3 upstream connection is opened as the client connects, not when it logs in:
 * through the real daemon, against a scripted TLS server that counts connections, handshakes and
 * resumed TLS sessions.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { Conversation } from '../support/conversation.js';
import { makeFaultCertificates, type FaultCertificates } from '../support/faults/certificates.js';
import { finalReply, greeted } from '../support/faults/imap-steps.js';
import { ScriptedTlsServer, type ServerScript } from '../support/faults/scripted-tls-server.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, serverSection, USER, World } from '../support/world.js';
import {
  EARLY_UPSTREAM_FRESH_MS,
  EARLY_UPSTREAM_IDLE_RETRY_MS,
} from '../../src/proxy/early-upstream.js';

/** An IMAP server that takes any XOAUTH2 login. */
const ACCEPTING_IMAP: ServerScript = {
  greeting: '* OK scripted IMAP ready',
  replies: [
    [/^P1 AUTHENTICATE XOAUTH2 /, 'P1 OK [CAPABILITY IMAP4rev1] Logged in'],
    [/^a2 LOGOUT/, '* BYE bye\na2 OK done'],
  ],
  hangUp: /^never$/,
  how: 'close',
};

const ACCEPTING_POP3: ServerScript = {
  greeting: '+OK scripted POP3 ready',
  replies: [[/^AUTH XOAUTH2 /, '+OK Logged in.']],
  hangUp: /^never$/,
  how: 'close',
};

let world: World;
let certsDir: string;
let certs: FaultCertificates;
let imap: ScriptedTlsServer;
let pop3: ScriptedTlsServer;
let wrongHost: ScriptedTlsServer;
/** Servers that close idle connections before login: on their own, and as a login arrives. */
let idle: ScriptedTlsServer;
let stale: ScriptedTlsServer;
let proxy: ProxyProcess;
/** Local ports: IMAP, POP3, IMAP to the server with a certificate for another host, `idle`, `stale`. */
let ports: number[];

beforeAll(async () => {
  world = await World.start();
  certsDir = await mkdtemp(join(tmpdir(), 'omp-early-certs-'));
  certs = await makeFaultCertificates(certsDir);
  [imap, pop3, wrongHost, idle, stale] = await Promise.all([
    ScriptedTlsServer.start(certs.good),
    ScriptedTlsServer.start(certs.good),
    ScriptedTlsServer.start(certs.wrongHost),
    ScriptedTlsServer.start(certs.good),
    ScriptedTlsServer.start(certs.good),
  ]);
  imap.script = ACCEPTING_IMAP;
  pop3.script = ACCEPTING_POP3;
  wrongHost.script = ACCEPTING_IMAP;
  idle.script = { ...ACCEPTING_IMAP, idleHangUpMs: 300 };
  stale.script = { ...ACCEPTING_IMAP, how: 'reset', staleAfterMs: 1_500 };
  await world.seedTokens();
  ports = await freePorts(5);
  const section = (index: number, protocol: 'IMAP' | 'POP', upstreamPort: number) =>
    serverSection(protocol, ports[index]!, upstreamPort, certs.caFile);
  proxy = await world.startProxy({
    config: world.config(
      [
        section(0, 'IMAP', imap.port),
        section(1, 'POP', pop3.port),
        section(2, 'IMAP', wrongHost.port),
        section(3, 'IMAP', idle.port),
        section(4, 'IMAP', stale.port),
      ].join('\n'),
    ),
    args: ['--authorisation-wait', '0', '--early-upstream', '16'],
  });
  await proxy.ready();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.allSettled([imap, pop3, wrongHost, idle, stale].map((server) => server?.close()));
  await world?.stop();
  if (certsDir) await rm(certsDir, { recursive: true, force: true });
});

beforeEach(() => {
  imap.received.length = 0;
});

const port = (index: number): number => ports[index]!;

describe('the upstream connection is opened as the client connects', () => {
  it('IMAP: the TLS handshake is done before the client has sent anything, and the login uses that connection', async () => {
    const before = { accepted: imap.accepted, handshakes: imap.handshakes };
    const client = await greeted(port(0));
    await vi.waitFor(() => expect(imap.handshakes).toBe(before.handshakes + 1));
    expect(imap.received).toEqual([]);

    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1')).toBe('a1 OK [CAPABILITY IMAP4rev1] Logged in');
    client.send('a2 LOGOUT');
    expect(await finalReply(client, 'a2')).toBe('* BYE bye');
    client.close();
    // One connection for the whole session: the early one was the one logged in.
    expect(imap.accepted).toBe(before.accepted + 1);
    expect(imap.received.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual([
      'P1 AUTHENTICATE',
      'a2 LOGOUT',
    ]);
  });

  it('POP3: the same', async () => {
    const before = pop3.handshakes;
    const client = await Conversation.connect(port(1));
    await client.expect(/^\+OK /);
    await vi.waitFor(() => expect(pop3.handshakes).toBe(before + 1));
    client.send(`USER ${USER}`);
    await client.expect(/^\+OK/);
    client.send(`PASS ${PASSWORD}`);
    expect(await client.line()).toBe('+OK Logged in.');
    client.close();
    expect(pop3.accepted).toBe(before + 1);
  });

  it('is kept for the next client when its client leaves without logging in, and closed once stale', async () => {
    await vi.waitFor(() => expect(imap.open).toBe(0), { timeout: EARLY_UPSTREAM_FRESH_MS + 5_000 });
    const accepted = imap.accepted;
    const leaving = await greeted(port(0));
    await vi.waitFor(() => expect(imap.open).toBe(1));
    leaving.close();
    // The next client gets the same connection: the server sees no new one, and the login uses it.
    expect(await loginAndLeave(port(0))).toMatch(/^a1 OK /);
    expect(imap.accepted).toBe(accepted + 1);
    expect(imap.received.map((line) => line.split(' ')[1])).toEqual(['AUTHENTICATE']);
    // A spare nobody takes is closed once stale, without a byte of any login sent on it.
    const spare = await greeted(port(0));
    await vi.waitFor(() => expect(imap.open).toBe(1));
    spare.close();
    await vi.waitFor(() => expect(imap.open).toBe(0), { timeout: EARLY_UPSTREAM_FRESH_MS + 5_000 });
    expect(imap.received.map((line) => line.split(' ')[1])).toEqual(['AUTHENTICATE']);
  }, 40_000);

  it('resumes the TLS session of an earlier connection', async () => {
    // The first session's tickets arrive after its handshake; every later handshake can use one.
    expect(await loginAndLeave(port(0))).toMatch(/^a1 OK /);
    const resumedBefore = imap.resumed;
    expect(await loginAndLeave(port(0))).toMatch(/^a1 OK /);
    expect(imap.resumed).toBe(resumedBefore + 1);
  });
});

describe('an early connection the server closed', () => {
  it('while it sat idle before the login: the login gets a fresh connection', async () => {
    const accepted = idle.accepted;
    const client = await greeted(port(3));
    await vi.waitFor(() => expect(idle.accepted).toBe(accepted + 1));
    await vi.waitFor(() => expect(idle.open).toBe(0));
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1')).toBe('a1 OK [CAPABILITY IMAP4rev1] Logged in');
    client.close();
    expect(idle.accepted).toBe(accepted + 2);
    expect(idle.received.map((line) => line.split(' ')[1])).toEqual(['AUTHENTICATE']);
  });

  it('as the login arrived (a reset): the login is made again on a fresh connection', async () => {
    const { accepted, handshakes } = stale;
    const client = await greeted(port(4));
    await vi.waitFor(() => expect(stale.handshakes).toBe(handshakes + 1));
    // Idle past the server's limit; the login's command is the line it hangs up on.
    await new Promise((resolve) => setTimeout(resolve, EARLY_UPSTREAM_IDLE_RETRY_MS + 1_000));
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1')).toBe('a1 OK [CAPABILITY IMAP4rev1] Logged in');
    client.close();
    expect(stale.accepted).toBe(accepted + 2);
    expect(stale.received.map((line) => line.split(' ')[1])).toEqual(['AUTHENTICATE']);
  });
});

describe('an upstream that has been failing', () => {
  it('gets no early connection; a login still connects and reports the failure as before', async () => {
    // The first client's early connection finds the certificate wrong, and its login says so.
    expect(await loginAndLeave(port(2))).toBe(
      `* BYE [UNAVAILABLE] Cannot log in to localhost:${wrongHost.port}: its TLS certificate is for another host name (ERR_TLS_CERT_ALTNAME_INVALID); check server_address`,
    );
    const accepted = wrongHost.accepted;
    const client = await greeted(port(2));
    // Time enough for an early connection to reach the server, were one opened.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(wrongHost.accepted).toBe(accepted);
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    expect(await finalReply(client, 'a1')).toMatch(/^\* BYE \[UNAVAILABLE\] Cannot log in to /);
    client.close();
    expect(wrongHost.accepted).toBe(accepted + 1);
    expect(wrongHost.handshakes).toBe(0);
  });
});

async function loginAndLeave(localPort: number): Promise<string> {
  const client = await greeted(localPort);
  try {
    client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
    return await finalReply(client, 'a1');
  } finally {
    client.close();
  }
}

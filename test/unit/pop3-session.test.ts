import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PreAuthLimits } from '../../src/proxy/session.js';
import { pop3Session } from '../../src/proxy/pop3/session.js';
import { encodeXoauth2 } from '../../src/proxy/sasl.js';
import type { Conversation } from '../support/conversation.js';
import {
  FixedAuthenticator,
  ScriptedUpstream,
  startSessionUnderTest,
  testCa,
  type SessionUnderTest,
} from '../support/session-harness.js';
import { eventually } from '../support/eventually.js';

const USER = 'john.smith@example.com';
const PASSWORD = 'local pass';
const TOKEN = 'ACCESS-TOKEN-1';
const GREETING = '+OK oauth2-mail-proxy ready';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

let ca: Awaited<ReturnType<typeof testCa>>;
let upstream: ScriptedUpstream;
let proxy: SessionUnderTest;
let auth: FixedAuthenticator;

function accounts(): FixedAuthenticator {
  return new FixedAuthenticator({
    [USER]: { password: PASSWORD, result: TOKEN },
    'pending@example.com': {
      password: 'pw',
      result: {
        reason: 'authorisation-needed',
        message: 'Authorisation needed: run oauth2-mail-proxy authorize pending@example.com',
      },
    },
    'broken@example.com': {
      password: 'pw',
      result: { reason: 'config', message: 'x'.repeat(2000) },
    },
  });
}

async function restartProxy(
  options: {
    limits?: Partial<PreAuthLimits> | undefined;
    localTls?: { context: tls.SecureContext; implicit: boolean };
  } = {},
): Promise<void> {
  await proxy.close();
  proxy = await startSessionUnderTest({
    protocol: 'POP',
    session: pop3Session,
    auth,
    upstream,
    upstreamSecurity: 'implicit',
    caPem: ca.caPem,
    ...options,
  });
}

beforeAll(async () => {
  ca = await testCa();
  upstream = await ScriptedUpstream.start(ca, 'implicit');
});
afterAll(async () => {
  await upstream.close();
  await ca.dispose();
});
beforeEach(async () => {
  auth = accounts();
  proxy = await startSessionUnderTest({
    protocol: 'POP',
    session: pop3Session,
    auth,
    upstream,
    upstreamSecurity: 'implicit',
    caPem: ca.caPem,
  });
});
afterEach(async () => {
  await proxy.close();
});

/** The upstream side of a successful XOAUTH2 login, as Dovecot would answer it. */
async function serverAcceptsToken(server: Conversation): Promise<void> {
  server.send('+OK Dovecot ready.');
  await server.expect(`AUTH XOAUTH2 ${encodeXoauth2(USER, TOKEN)}`);
  server.send('+OK Logged in.');
}

async function connected(): Promise<Conversation> {
  const client = await proxy.connect();
  await client.expect(GREETING);
  return client;
}

describe('POP3 before login', () => {
  it('greets without an APOP timestamp, lists what it honours in CAPA, and says goodbye on QUIT', async () => {
    const client = await connected();
    client.send('CAPA');
    await client.expect('+OK Capability list follows');
    await client.expect('USER');
    await client.expect('SASL PLAIN');
    await client.expect('RESP-CODES');
    await client.expect('AUTH-RESP-CODE');
    await client.expect('.');
    client.send('AUTH');
    await client.expect('+OK');
    await client.expect('PLAIN');
    await client.expect('.');
    client.send('quit');
    await client.expect('+OK oauth2-mail-proxy signing off');
    await client.closedByPeer();
    expect(upstream.connections).toBe(0);
  });

  it('refuses commands that need a login, unknown commands and garbage, without closing', async () => {
    const client = await connected();
    client.send('STAT');
    await client.expect(
      '-ERR STAT is not valid before logging in; log in with USER and PASS, or AUTH PLAIN, first',
    );
    client.send('NOOP');
    await client.expect(
      '-ERR NOOP is not valid before logging in; log in with USER and PASS, or AUTH PLAIN, first',
    );
    client.send('XYZZY plugh');
    await client.expect('-ERR Unknown command');
    client.send('');
    await client.expect('-ERR Expected: command [arguments]');
    client.send('APOP john c4c9334bac560ecc979e58001b3e22fb');
    await client.expect('-ERR APOP is not supported here; use USER and PASS, or AUTH PLAIN');
    client.send('STLS');
    await client.expect(
      '-ERR STLS is not offered here (configure local_certificate_path and local_key_path)',
    );
    client.send('USER');
    await client.expect('-ERR Expected: USER name');
    client.send('CAPA');
    await client.expect('+OK Capability list follows');
    for (let line = await client.line(); line !== '.'; line = await client.line())
      expect(line).not.toBe('STLS');
  });

  it('wants PASS right after USER', async () => {
    const client = await connected();
    client.send(`PASS ${PASSWORD}`);
    await client.expect('-ERR Send USER first, then PASS');
    client.send(`USER ${USER}`);
    await client.expect('+OK Send the password with PASS');
    client.send('CAPA');
    await client.expect('+OK Capability list follows');
    while ((await client.line()) !== '.');
    client.send(`PASS ${PASSWORD}`);
    await client.expect('-ERR Send USER first, then PASS');
    client.send(`USER ${USER}`);
    await client.line();
    client.send('PASS');
    await client.expect('-ERR Expected: PASS password');
    expect(auth.logins).toEqual([]);
  });

  it('refuses other SASL mechanisms and malformed PLAIN responses', async () => {
    const client = await connected();
    client.send('AUTH XOAUTH2 dXNlcj0=');
    await client.expect('-ERR Only AUTH PLAIN is supported here (or use USER and PASS)');
    client.send('AUTH CRAM-MD5');
    await client.expect('-ERR Only AUTH PLAIN is supported here (or use USER and PASS)');
    client.send('AUTH PLAIN not-base64!');
    await client.expect(
      '-ERR Malformed SASL PLAIN response (expected base64 of NUL user NUL password)',
    );
    client.send(`AUTH PLAIN ${b64(`someone-else\0${USER}\0${PASSWORD}`)}`);
    await client.expect(
      '-ERR Malformed SASL PLAIN response (expected base64 of NUL user NUL password)',
    );
    client.send('AUTH PLAIN a b');
    await client.expect('-ERR Expected: AUTH PLAIN [initial-response]');
    expect(auth.logins).toEqual([]);
  });
});

describe('POP3 login', () => {
  it('turns USER/PASS into AUTH XOAUTH2 upstream, then passes bytes through untouched', async () => {
    const client = await connected();
    client.send(`USER ${USER}`);
    await client.expect('+OK Send the password with PASS');
    client.send(`PASS ${PASSWORD}`);
    const server = await upstream.next();
    await serverAcceptsToken(server);
    await client.expect('+OK Logged in.');

    client.send('CAPA');
    await server.expect('CAPA');
    server.send('+OK\r\nTOP\r\nUIDL\r\nPIPELINING\r\n.');
    await client.expect('+OK');
    await client.expect('TOP');
    await client.expect('UIDL');
    await client.expect('PIPELINING');
    await client.expect('.');
    client.send('RETR 1');
    await server.expect('RETR 1');
    server.send('+OK 12 octets\r\n..dot line\r\n.');
    await client.expect('+OK 12 octets');
    await client.expect('..dot line');
    await client.expect('.');
  });

  it('takes the whole rest of the PASS line as the password, spaces included', async () => {
    const password = ' two  spaces and a tail ';
    auth = new FixedAuthenticator({ [USER]: { password, result: TOKEN } });
    await restartProxy();
    const client = await connected();
    client.send(`user ${USER}`);
    await client.line();
    client.send(`pass ${password}`);
    await serverAcceptsToken(await upstream.next());
    await client.expect('+OK Logged in.');
  });

  it('takes AUTH PLAIN with an initial response', async () => {
    const client = await connected();
    client.send(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`);
    await serverAcceptsToken(await upstream.next());
    await client.expect('+OK Logged in.');
  });

  it('takes AUTH PLAIN after a continuation, and lets the client cancel with *', async () => {
    const client = await connected();
    client.send('AUTH PLAIN');
    await client.expect('+ ');
    client.send('*');
    await client.expect('-ERR AUTH cancelled');
    client.send('auth plain');
    await client.expect('+ ');
    client.send(b64(`${USER}\0${USER}\0${PASSWORD}`));
    await serverAcceptsToken(await upstream.next());
    await client.expect('+OK Logged in.');
  });

  it('answers a wrong password with [AUTH] and lets the client try again', async () => {
    const client = await connected();
    client.send(`USER ${USER}`);
    await client.line();
    client.send('PASS wrong');
    await client.expect(`-ERR [AUTH] Wrong password for ${USER}`);
    // The upstream connection opened alongside the first attempt is dropped unused.
    await eventually(() => expect(upstream.rawSockets.size).toBe(0));
    client.send(`USER ${USER}`);
    await client.line();
    client.send(`PASS ${PASSWORD}`);
    await serverAcceptsToken(await upstream.next());
    await client.expect('+OK Logged in.');
  });

  it('answers a pending authorisation with [SYS/TEMP] so the client retries later', async () => {
    const client = await connected();
    client.send('USER pending@example.com');
    await client.line();
    client.send('PASS pw');
    await client.expect(
      '-ERR [SYS/TEMP] Service temporarily unavailable: Authorisation needed: run oauth2-mail-proxy authorize pending@example.com',
    );
  });

  it('keeps a long failure message within the 512 octets RFC 2449 allows a status line', async () => {
    const client = await connected();
    client.send('USER broken@example.com');
    await client.line();
    client.send('PASS pw');
    const line = await client.expect(/^-ERR \[AUTH\] x+$/);
    expect(Buffer.byteLength(`${line}\r\n`)).toBe(512);
  });

  it('ends the XOAUTH2 error challenge itself and tells the client the server refused the token', async () => {
    const client = await connected();
    client.send(`USER ${USER}`);
    await client.line();
    client.send(`PASS ${PASSWORD}`);
    // Refused, refreshed and tried once more on a new connection: refused again, it stands.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const server = await upstream.next();
      server.send('+OK Dovecot ready.');
      await server.expect(/^AUTH XOAUTH2 /);
      server.send(
        `+ ${b64('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/POP.AccessAsUser.All"}')}`,
      );
      await server.expect('');
      server.send('-ERR [AUTH] Authentication failed.');
    }
    await client.expect(
      `-ERR [AUTH] localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server rejected the token (status 401): ` +
        `[AUTH] Authentication failed. If this persists, re-authorise the account: oauth2-mail-proxy authorize ${USER}`,
    );
    expect(auth.rejected).toEqual([USER, USER]);
    // The client may try again on the same connection.
    client.send('CAPA');
    await client.expect('+OK Capability list follows');
  });

  it('passes on an upstream refusal that is not about the token, and keeps the token', async () => {
    const client = await connected();
    client.send(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`);
    const server = await upstream.next();
    server.send('+OK Dovecot ready.');
    await server.expect(/^AUTH XOAUTH2 /);
    server.send('-ERR [IN-USE] Mailbox is locked by another POP3 session');
    await client.expect('-ERR [IN-USE] Mailbox is locked by another POP3 session');
    expect(auth.rejected).toEqual([]);
  });

  it('says [SYS/TEMP] naming the server and closes when the upstream is unreachable', async () => {
    const port = upstream.port;
    await upstream.close();
    try {
      const client = await connected();
      client.send(`USER ${USER}`);
      await client.line();
      client.send(`PASS ${PASSWORD}`);
      await client.expect(
        `-ERR [SYS/TEMP] Service temporarily unavailable: Cannot log in to localhost:${port}: connection refused. Try again later`,
      );
      await client.closedByPeer();
    } finally {
      upstream = await ScriptedUpstream.start(ca, 'implicit');
    }
  });

  it('says [SYS/TEMP] when the upstream hangs up in the middle of the login', async () => {
    const client = await connected();
    client.send(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`);
    const server = await upstream.next();
    server.send('+OK Dovecot ready.');
    await server.expect(/^AUTH XOAUTH2 /);
    server.socket.end();
    await client.expect(
      `-ERR [SYS/TEMP] Service temporarily unavailable: Cannot log in to localhost:${upstream.port}: the server closed the connection during login. Try again later`,
    );
    await client.closedByPeer();
  });

  it('holds commands pipelined behind PASS and delivers them upstream after the login', async () => {
    const client = await connected();
    // USER, PASS and the first transaction commands in one write, as a pipelining client sends them.
    client.sendRaw(`USER ${USER}\r\nPASS ${PASSWORD}\r\nSTAT\r\nLIST\r\n`);
    await client.expect('+OK Send the password with PASS');
    const server = await upstream.next();
    server.send('+OK Dovecot ready.');
    await server.expect(`AUTH XOAUTH2 ${encodeXoauth2(USER, TOKEN)}`);
    // Sent after PASS but before the login finished.
    client.sendRaw('UIDL\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.send('+OK Logged in.');
    await client.expect('+OK Logged in.');
    await server.expect('STAT');
    await server.expect('LIST');
    await server.expect('UIDL');
    server.send('+OK 0 0');
    await client.expect('+OK 0 0');
  });

  it('never writes the password or the token to the log, even at debug level', async () => {
    const client = await connected();
    client.send(`USER ${USER}`);
    await client.line();
    client.send(`PASS ${PASSWORD}`);
    await serverAcceptsToken(await upstream.next());
    await client.expect('+OK Logged in.');
    client.close();

    const other = await connected();
    other.send(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`);
    await serverAcceptsToken(await upstream.next());
    await other.expect('+OK Logged in.');
    other.close();
    await new Promise((r) => setTimeout(r, 50));

    const commands = proxy.logs.events().filter((event) => event.event === 'client_command');
    expect(commands).toContainEqual(expect.objectContaining({ verb: 'USER', user: USER }));
    expect(commands).toContainEqual(expect.objectContaining({ verb: 'PASS' }));
    expect(commands).toContainEqual(expect.objectContaining({ verb: 'AUTH' }));
    expect(proxy.logs.text).toContain('"event":"login"');
    expect(proxy.logs.text).not.toContain(PASSWORD);
    expect(proxy.logs.text).not.toContain(b64(`\0${USER}\0${PASSWORD}`));
    expect(proxy.logs.text).not.toContain(TOKEN);
  });
});

describe('POP3 local STLS', () => {
  async function startWithLocalTls(limits?: Partial<PreAuthLimits>): Promise<void> {
    const [key, cert] = await Promise.all([readFile(ca.keyFile), readFile(ca.certFile)]);
    await restartProxy({
      localTls: { context: tls.createSecureContext({ key, cert }), implicit: false },
      limits,
    });
  }

  it('offers STLS, upgrades, stops offering it, and the spliced session outlives the pre-login idle timer', async () => {
    await startWithLocalTls({ idleTimeoutMs: 300 });
    const plain = await connected();
    plain.send('CAPA');
    await plain.expect('+OK Capability list follows');
    const capabilities: string[] = [];
    for (let line = await plain.line(); line !== '.'; line = await plain.line())
      capabilities.push(line);
    expect(capabilities).toContain('STLS');
    plain.send('STLS');
    await plain.expect('+OK Begin TLS negotiation now');
    const client = await plain.startTls({ ca: ca.caPem, servername: 'localhost' });

    client.send('STLS');
    await client.expect('-ERR Command not permitted when TLS active');
    client.send(`USER ${USER}`);
    await client.line();
    client.send(`PASS ${PASSWORD}`);
    const server = await upstream.next();
    await serverAcceptsToken(server);
    await client.expect('+OK Logged in.');

    await new Promise((resolve) => setTimeout(resolve, 700));
    client.send('STAT');
    await server.expect('STAT');
    server.send('+OK 2 320');
    await client.expect('+OK 2 320');
  });

  it('closes when the client sends data behind STLS before the handshake', async () => {
    await startWithLocalTls();
    const client = await connected();
    client.sendRaw('STLS\r\nCAPA\r\n');
    await client.expect('-ERR Data sent after STLS before the TLS handshake');
    await client.closedByPeer();
  });
});

describe('POP3 limits before login', () => {
  it('closes on an overlong line', async () => {
    const client = await connected();
    client.send(`USER ${'x'.repeat(70_000)}`);
    await client.expect('-ERR Line too long (limit 65536 bytes)');
    await client.closedByPeer();
  });

  it('closes on an overlong SASL response', async () => {
    const client = await connected();
    client.send('AUTH PLAIN');
    await client.expect('+ ');
    client.send('A'.repeat(70_000));
    await client.expect('-ERR Line too long (limit 65536 bytes)');
    await client.closedByPeer();
  });

  it('closes after too many commands', async () => {
    await restartProxy({ limits: { maxCommands: 3 } });
    const client = await connected();
    for (let i = 0; i < 3; i += 1) {
      client.send('STAT');
      await client.expect(/^-ERR STAT is not valid/);
    }
    client.send('STAT');
    await client.expect('-ERR Too many commands before logging in');
    await client.closedByPeer();
  });

  it('closes an idle client that never logs in', async () => {
    await restartProxy({ limits: { idleTimeoutMs: 200 } });
    const client = await connected();
    await client.expect('-ERR Autologout; idle for too long before logging in', 5_000);
    await client.closedByPeer();
  });
});

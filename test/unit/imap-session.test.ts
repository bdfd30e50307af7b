import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { UpstreamCredentials } from '../../src/auth/types.js';
import { imapSession } from '../../src/proxy/imap/session.js';
import { startListener } from '../../src/proxy/listener.js';
import { encodeXoauth2 } from '../../src/proxy/sasl.js';
import { DEFAULT_LIMITS, type PreAuthLimits } from '../../src/proxy/session.js';
import { Conversation } from '../support/conversation.js';
import {
  FixedAuthenticator,
  LogCapture,
  ScriptedUpstream,
  startSessionUnderTest,
  testCa,
  type SessionUnderTest,
} from '../support/session-harness.js';
import { eventually } from '../support/eventually.js';

const USER = 'john.smith@example.com';
const PASSWORD = 'local pass';
const TOKEN = 'ACCESS-TOKEN-1';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

let ca: Awaited<ReturnType<typeof testCa>>;
let upstream: ScriptedUpstream;
let proxy: SessionUnderTest;
let auth: FixedAuthenticator;

beforeAll(async () => {
  ca = await testCa();
  upstream = await ScriptedUpstream.start(ca, 'implicit');
});
afterAll(async () => {
  await upstream.close();
  await ca.dispose();
});
beforeEach(async () => {
  auth = new FixedAuthenticator({
    [USER]: { password: PASSWORD, result: TOKEN },
    'pending@example.com': {
      password: 'pw',
      result: {
        reason: 'authorisation-needed',
        message: 'Authorisation needed: run oauth2-mail-proxy authorize pending@example.com',
      },
    },
  });
  proxy = await startSessionUnderTest({
    protocol: 'IMAP',
    session: imapSession,
    auth,
    upstream,
    upstreamSecurity: 'implicit',
    caPem: ca.caPem,
  });
});
afterEach(async () => {
  await proxy.close();
});

async function restartProxy(
  options: {
    limits?: Partial<PreAuthLimits> | undefined;
    localTls?: { context: tls.SecureContext; implicit: boolean };
  } = {},
): Promise<void> {
  await proxy.close();
  proxy = await startSessionUnderTest({
    protocol: 'IMAP',
    session: imapSession,
    auth,
    upstream,
    upstreamSecurity: 'implicit',
    caPem: ca.caPem,
    ...options,
  });
}

async function localTlsContext(): Promise<{ context: tls.SecureContext; implicit: boolean }> {
  const [key, cert] = await Promise.all([readFile(ca.keyFile), readFile(ca.certFile)]);
  return { context: tls.createSecureContext({ key, cert }), implicit: false };
}

/** The authenticator of these tests, answering only after `delayMs` as a token refresh would. */
class SlowAuthenticator extends FixedAuthenticator {
  constructor(private readonly delayMs: number) {
    super({ [USER]: { password: PASSWORD, result: TOKEN } });
  }

  override async login(request: {
    username: string;
    password: string;
  }): Promise<UpstreamCredentials> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.login(request);
  }
}

/** The upstream side of a successful XOAUTH2 login, as Dovecot would answer it. */
async function serverAcceptsToken(server: Conversation): Promise<void> {
  server.send('* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Dovecot ready.');
  await server.expect(`P1 AUTHENTICATE XOAUTH2 ${encodeXoauth2(USER, TOKEN)}`);
  server.send('P1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in');
}

describe('IMAP before login', () => {
  it('greets with the capabilities a password client needs and answers CAPABILITY, NOOP, ID', async () => {
    const client = await proxy.connect();
    await client.expect(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] oauth2-mail-proxy ready',
    );
    client.send('a CAPABILITY');
    await client.expect('* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN');
    await client.expect('a OK CAPABILITY completed');
    client.send('b NOOP');
    await client.expect('b OK NOOP completed');
    client.send('c ID ("name" "fetchmail")');
    await client.expect('* ID ("name" "oauth2-mail-proxy")');
    await client.expect('c OK ID completed');
    client.send('d LOGOUT');
    await client.expect('* BYE Logging out');
    await client.expect('d OK LOGOUT completed');
    await client.closedByPeer();
    expect(upstream.connections).toBe(0);
  });

  it('refuses commands that need a login, and garbage, without closing', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a SELECT INBOX');
    await client.expect(
      'a BAD SELECT is not valid before logging in; log in with LOGIN or AUTHENTICATE PLAIN first',
    );
    client.send('justoneword');
    await client.expect('justoneword BAD Expected: tag SP command');
    client.send('');
    await client.expect('* BAD Expected: tag SP command');
    client.send('b LOGIN "unterminated');
    await client.expect('b BAD Unterminated quoted string');
    client.send('c LOGIN onlyuser');
    await client.expect('c BAD Expected: LOGIN username password');
    client.send('d NOOP');
    await client.expect('d OK NOOP completed');
  });
});

describe('IMAP login', () => {
  it('turns LOGIN into AUTHENTICATE XOAUTH2 upstream, then passes bytes through untouched', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN "${USER}" "local pass"`);
    const server = await upstream.next();
    await serverAcceptsToken(server);
    await client.expect('a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in');

    client.send('a2 SELECT INBOX');
    await server.expect('a2 SELECT INBOX');
    server.send('* 1 EXISTS\r\na2 OK [READ-WRITE] SELECT completed');
    await client.expect('* 1 EXISTS');
    await client.expect('a2 OK [READ-WRITE] SELECT completed');
  });

  it('reads a LOGIN whose password is a synchronizing literal and whose user is a non-synchronizing one', async () => {
    const client = await proxy.connect();
    await client.line();
    client.sendRaw(`a1 LOGIN {${USER.length}+}\r\n${USER} {${Buffer.byteLength(PASSWORD)}}\r\n`);
    await client.expect('+ Ready for literal data');
    client.send(PASSWORD);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a1 OK /);
  });

  it('accepts quoted strings with escapes', async () => {
    auth = new FixedAuthenticator({ [USER]: { password: 'a "quoted\\ pass', result: TOKEN } });
    await proxy.close();
    proxy = await startSessionUnderTest({
      protocol: 'IMAP',
      session: imapSession,
      auth,
      upstream,
      upstreamSecurity: 'implicit',
      caPem: ca.caPem,
    });
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "a \\"quoted\\\\ pass"`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a1 OK /);
  });

  it('takes AUTHENTICATE PLAIN with an initial response', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 AUTHENTICATE PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a1 OK /);
  });

  it('takes AUTHENTICATE PLAIN after a continuation, and lets the client cancel with *', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 AUTHENTICATE PLAIN');
    await client.expect('+ ');
    client.send('*');
    await client.expect('a1 BAD AUTHENTICATE cancelled');
    client.send('a2 AUTHENTICATE PLAIN');
    await client.expect('+ ');
    client.send(b64(`${USER}\0${USER}\0${PASSWORD}`));
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a2 OK /);
  });

  it('refuses other SASL mechanisms', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 AUTHENTICATE CRAM-MD5');
    await client.expect('a1 NO [CANNOT] Only AUTHENTICATE PLAIN is supported here (or use LOGIN)');
  });

  it('answers a wrong password with AUTHENTICATIONFAILED and lets the client try again', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} wrong`);
    await client.expect(`a1 NO [AUTHENTICATIONFAILED] Wrong password for ${USER}`);
    // The upstream connection opened alongside the first attempt is dropped unused.
    await eventually(() => expect(upstream.rawSockets.size).toBe(0));
    client.send(`a2 LOGIN ${USER} "${PASSWORD}"`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a2 OK /);
  });

  it('answers a pending authorisation with UNAVAILABLE so the client retries later', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 LOGIN pending@example.com pw');
    await client.expect(
      'a1 NO [UNAVAILABLE] Authorisation needed: run oauth2-mail-proxy authorize pending@example.com',
    );
  });

  it('ends the XOAUTH2 error challenge itself and tells the client the server refused the token', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    // Refused, refreshed and tried once more on a new connection: refused again, it stands.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const server = await upstream.next();
      server.send('* OK Dovecot ready.');
      await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
      server.send(
        `+ ${b64('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}')}`,
      );
      await server.expect('');
      server.send('P1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    }
    await client.expect(
      `a1 NO [AUTHENTICATIONFAILED] localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server rejected the token (status 401): ` +
        `[AUTHENTICATIONFAILED] Authentication failed. If this persists, re-authorise the account: oauth2-mail-proxy authorize ${USER}`,
    );
    expect(auth.rejected).toEqual([USER, USER]);
  });

  it('treats a NO without a response code as a rejected token', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const server = await upstream.next();
      server.send('* OK Dovecot ready.');
      await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
      server.send('P1 NO Authentication failed');
    }
    await client.expect(
      `a1 NO [AUTHENTICATIONFAILED] localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server rejected the token: ` +
        `Authentication failed. If this persists, re-authorise the account: oauth2-mail-proxy authorize ${USER}`,
    );
    expect(auth.rejected).toEqual([USER, USER]);
  });

  it.each([
    '[UNAVAILABLE] Temporary authentication failure. [host:2024-05-01 10:00:00]',
    '[INUSE] Mailbox is locked by another session',
    '[SERVERBUG] Internal error occurred. Refer to server log for more information.',
    '[LIMIT] Too many connections for this user',
  ])(
    'passes on an upstream NO %s that is not about the token, and keeps the token',
    async (text) => {
      const client = await proxy.connect();
      await client.line();
      client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
      const server = await upstream.next();
      server.send('* OK Dovecot ready.');
      await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
      server.send(`P1 NO ${text}`);
      await client.expect(`a1 NO ${text}`);
      expect(auth.rejected).toEqual([]);
      // The client may try again on the same connection.
      client.send('a2 NOOP');
      await client.expect('a2 OK NOOP completed');
    },
  );

  it('says BYE naming the server when the upstream is unreachable', async () => {
    const port = upstream.port;
    await upstream.close();
    try {
      const client = await proxy.connect();
      await client.line();
      client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
      await client.expect(
        `* BYE [UNAVAILABLE] Cannot log in to localhost:${port}: connection refused. Try again later`,
      );
      await client.closedByPeer();
    } finally {
      upstream = await ScriptedUpstream.start(ca, 'implicit');
    }
  });

  it('says BYE [UNAVAILABLE] when the upstream resets the connection in the middle of the login', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    const server = await upstream.next();
    server.send('* OK Dovecot ready.');
    await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
    // A TCP reset under the TLS session, as a crashing server or a middlebox sends it.
    const raw = [...upstream.rawSockets].find(
      (socket) => socket.remotePort === server.socket.remotePort,
    );
    raw?.resetAndDestroy();
    await client.expect(
      `* BYE [UNAVAILABLE] Cannot log in to localhost:${upstream.port}: connection closed by the server. Try again later`,
    );
    await client.closedByPeer();
    expect(proxy.logs.text).not.toContain('session_error');
  });

  it('says BYE [UNAVAILABLE] when the upstream sends a line past the limit during the login', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    const server = await upstream.next();
    server.send(`* OK ${'x'.repeat(70_000)}`);
    await client.expect(
      `* BYE [UNAVAILABLE] Cannot log in to localhost:${upstream.port}: the server sent a line longer than 65536 bytes. Try again later`,
    );
    await client.closedByPeer();
    expect(proxy.logs.text).not.toContain('session_error');
  });

  it('never writes the password or the token to the log, even at debug level', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a1 OK /);
    client.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.logs.text).toContain('"event":"login"');
    expect(proxy.logs.text).not.toContain(PASSWORD);
    expect(proxy.logs.text).not.toContain(TOKEN);
  });
});

describe('IMAP limits before login', () => {
  it('refuses a huge synchronizing literal without reading it', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 LOGIN {999999999}');
    await client.expect('a1 NO [TOOBIG] Literal too large (limit 16384 bytes)');
    client.send('a2 NOOP');
    await client.expect('a2 OK NOOP completed');
  });

  it('closes on a huge non-synchronizing literal, whose bytes are already on their way', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 LOGIN {999999999+}');
    await client.expect('* BYE Literal too large (limit 16384 bytes)');
    await client.closedByPeer();
  });

  it('accepts the longest ID line RFC 2971 allows (31,807 bytes), as Dovecot does', async () => {
    const client = await proxy.connect();
    await client.line();
    const pair = (index: number): string =>
      `"${String(index).padStart(30, 'f')}" "${'v'.repeat(1024)}"`;
    const line = `a1 ID (${Array.from({ length: 30 }, (_, index) => pair(index)).join(' ')})`;
    expect(Buffer.byteLength(line)).toBe(31_807);
    client.send(line);
    await client.expect(/^\* ID /);
    await client.expect('a1 OK ID completed');
  });

  it('closes on an overlong line', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 NOOP ${'x'.repeat(70_000)}`);
    await client.expect('* BYE Command line too long (limit 65536 bytes)');
    await client.closedByPeer();
  });

  it('closes on an overlong SASL response after AUTHENTICATE PLAIN', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 AUTHENTICATE PLAIN');
    await client.expect('+ ');
    client.send('A'.repeat(70_000));
    await client.expect('* BYE Line too long (limit 65536 bytes)');
    await client.closedByPeer();
    expect(proxy.logs.text).not.toContain('session_error');
  });

  it('closes a client that keeps sending after the BYE, reading and dropping what it sends', async () => {
    const client = await proxy.connect();
    await client.line();
    // The literal's bytes follow at once, more than the kernel's socket buffers hold: unless the
    // proxy reads them, the client can never finish its write, and so never closes.
    const size = 16 * 1024 * 1024;
    client.sendRaw(
      Buffer.concat([Buffer.from(`a1 LOGIN {${size}+}\r\n`), Buffer.alloc(size, 'x')]),
    );
    await client.expect('* BYE Literal too large (limit 16384 bytes)');
    await client.closedByPeer();
  });

  it('closes after too many commands', async () => {
    await restartProxy({ limits: { maxCommands: 3 } });
    const client = await proxy.connect();
    await client.line();
    for (let i = 0; i < 3; i += 1) {
      client.send(`a${i} NOOP`);
      await client.expect(`a${i} OK NOOP completed`);
    }
    client.send('a9 NOOP');
    await client.expect('* BYE Too many commands before logging in');
    await client.closedByPeer();
  });
});

describe('IMAP idle clock before login', () => {
  it('closes an idle client that never logs in', async () => {
    await restartProxy({ limits: { idleTimeoutMs: 200 } });
    const client = await proxy.connect();
    await client.line();
    await client.expect('* BYE Autologout; idle for too long before logging in', 5_000);
    await client.closedByPeer();
  });

  it('does not run while the proxy waits for the upstream', async () => {
    await restartProxy({ limits: { idleTimeoutMs: 300 } });
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    const server = await upstream.next();
    await new Promise((resolve) => setTimeout(resolve, 700));
    await serverAcceptsToken(server);
    await client.expect(/^a1 OK /);
  });

  it('does not run while the proxy waits for the token', async () => {
    auth = new SlowAuthenticator(700);
    await restartProxy({ limits: { idleTimeoutMs: 300 } });
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a1 OK /);
  });
});

describe('IMAP local STARTTLS', () => {
  it('offers STARTTLS, upgrades, stops offering it, and the spliced session outlives the pre-login idle timer', async () => {
    await restartProxy({ localTls: await localTlsContext(), limits: { idleTimeoutMs: 300 } });
    const plain = await proxy.connect();
    await plain.expect(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN STARTTLS] oauth2-mail-proxy ready',
    );
    plain.send('a1 STARTTLS');
    await plain.expect('a1 OK Begin TLS negotiation now');
    const client = await plain.startTls({ ca: ca.caPem, servername: 'localhost' });

    client.send('a2 CAPABILITY');
    await client.expect('* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN');
    await client.expect('a2 OK CAPABILITY completed');
    client.send('a3 STARTTLS');
    await client.expect(/^a3 BAD STARTTLS is not offered here/);
    client.send(`a4 LOGIN ${USER} "${PASSWORD}"`);
    const server = await upstream.next();
    await serverAcceptsToken(server);
    await client.expect(/^a4 OK /);

    await new Promise((resolve) => setTimeout(resolve, 700));
    client.send('a5 NOOP');
    await server.expect('a5 NOOP');
    server.send('a5 OK NOOP completed');
    await client.expect('a5 OK NOOP completed');
  });

  it('closes when the client sends data behind STARTTLS before the handshake', async () => {
    await restartProxy({ localTls: await localTlsContext() });
    const client = await proxy.connect();
    await client.line();
    client.sendRaw('a1 STARTTLS\r\na2 LOGIN injected command\r\n');
    await client.expect('* BYE Data sent after STARTTLS before the TLS handshake');
    await client.closedByPeer();
  });

  it('logs a failed handshake and closes the connection', async () => {
    await restartProxy({ localTls: await localTlsContext() });
    const client = await proxy.connect();
    await client.line();
    client.send('a1 STARTTLS');
    await client.expect('a1 OK Begin TLS negotiation now');
    client.send('a2 NOOP'); // plain text where the TLS ClientHello belongs
    await client.closedByPeer();
    await eventually(() => expect(proxy.logs.text).toContain('"event":"local_tls_failed"'));
    expect(proxy.logs.text).not.toContain('session_error');
  });
});

describe('IMAP upstream silence', () => {
  it('says BYE [UNAVAILABLE] when the upstream says nothing for the connect timeout during the login', async () => {
    const logs = new LogCapture();
    const listener = await startListener({
      server: {
        section: 'IMAP-0',
        protocol: 'IMAP',
        localPort: 0,
        localAddress: '127.0.0.1',
        serverAddress: 'localhost',
        serverPort: upstream.port,
        serverStarttls: false,
        localStarttls: false,
      },
      session: imapSession,
      auth,
      log: logs.logger,
      limits: DEFAULT_LIMITS,
      upstream: { host: 'localhost', port: upstream.port, security: 'implicit' },
      upstreamTls: { extraCa: [ca.caPem], connectTimeoutMs: 300 },
      hostname: 'proxy.test',
    });
    const client = await Conversation.connect(listener.address.port);
    try {
      await client.line();
      client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
      const server = await upstream.next();
      server.send('* OK Dovecot ready.');
      await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
      // ...and no answer.
      await client.expect(
        `* BYE [UNAVAILABLE] Cannot log in to localhost:${upstream.port}: no answer within 300 ms. Try again later`,
      );
      await client.closedByPeer();
      await server.closedByPeer();
    } finally {
      client.close();
      for (const socket of listener.connections) socket.destroy();
      await listener.close();
    }
  });
});

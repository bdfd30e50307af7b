import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { imapSession } from '../../src/proxy/imap/session.js';
import { encodeXoauth2 } from '../../src/proxy/sasl.js';
import type { Conversation } from '../support/conversation.js';
import {
  FixedAuthenticator,
  ScriptedUpstream,
  startSessionUnderTest,
  testCa,
  type SessionUnderTest,
} from '../support/session-harness.js';

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
      result: { reason: 'authorisation-needed', message: 'Authorisation needed: run oauth2-mail-proxy authorize pending@example.com' },
    },
  });
  proxy = await startSessionUnderTest({ protocol: 'IMAP', session: imapSession, auth, upstream, upstreamSecurity: 'implicit', caPem: ca.caPem });
});
afterEach(async () => {
  await proxy.close();
});

/** The upstream side of a successful XOAUTH2 login, as Dovecot would answer it. */
async function serverAcceptsToken(server: Conversation): Promise<void> {
  server.send('* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Dovecot ready.');
  await server.expect(`P1 AUTHENTICATE XOAUTH2 ${encodeXoauth2(USER, TOKEN)}`);
  server.send('P1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in');
}

describe('IMAP before login', () => {
  it('greets with the capabilities a password client needs and answers CAPABILITY, NOOP, ID', async () => {
    const client = await proxy.connect();
    await client.expect('* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] oauth2-mail-proxy ready');
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
    await client.expect('a BAD SELECT is not valid before logging in; log in with LOGIN or AUTHENTICATE PLAIN first');
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
    proxy = await startSessionUnderTest({ protocol: 'IMAP', session: imapSession, auth, upstream, upstreamSecurity: 'implicit', caPem: ca.caPem });
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
    await vi.waitFor(() => expect(upstream.rawSockets.size).toBe(0));
    client.send(`a2 LOGIN ${USER} "${PASSWORD}"`);
    await serverAcceptsToken(await upstream.next());
    await client.expect(/^a2 OK /);
  });

  it('answers a pending authorisation with UNAVAILABLE so the client retries later', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send('a1 LOGIN pending@example.com pw');
    await client.expect('a1 NO [UNAVAILABLE] Authorisation needed: run oauth2-mail-proxy authorize pending@example.com');
  });

  it('ends the XOAUTH2 error challenge itself and tells the client the server refused the token', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
    const server = await upstream.next();
    server.send('* OK Dovecot ready.');
    await server.expect(/^P1 AUTHENTICATE XOAUTH2 /);
    server.send(`+ ${b64('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"}')}`);
    await server.expect('');
    server.send('P1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    await client.expect(
      `a1 NO [AUTHENTICATIONFAILED] localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server rejected the token (status 401): ` +
        `[AUTHENTICATIONFAILED] Authentication failed.. If this persists, re-authorise the account: oauth2-mail-proxy authorize ${USER}`,
    );
    expect(auth.rejected).toEqual([USER]);
  });

  it('says BYE naming the server when the upstream is unreachable', async () => {
    const port = upstream.port;
    await upstream.close();
    try {
      const client = await proxy.connect();
      await client.line();
      client.send(`a1 LOGIN ${USER} "${PASSWORD}"`);
      await client.expect(`* BYE [UNAVAILABLE] Cannot log in to localhost:${port}: connection refused. Try again later`);
      await client.closedByPeer();
    } finally {
      upstream = await ScriptedUpstream.start(ca, 'implicit');
    }
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

  it('closes on an overlong line', async () => {
    const client = await proxy.connect();
    await client.line();
    client.send(`a1 NOOP ${'x'.repeat(9000)}`);
    await client.expect('* BYE Command line too long (limit 8192 bytes)');
    await client.closedByPeer();
  });
});

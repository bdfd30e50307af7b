import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeXoauth2 } from '../../src/proxy/sasl.js';
import { smtpSession } from '../../src/proxy/smtp/session.js';
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
const PLAIN = b64(`\0${USER}\0${PASSWORD}`);
const XOAUTH2 = encodeXoauth2(USER, TOKEN);

/** What Office 365 offers on port 587 once TLS is up. */
const OFFICE365_EHLO = [
  '250-SN4PR0501CA0046.outlook.office365.com Hello [203.0.113.7]',
  '250-SIZE 157286400',
  '250-PIPELINING',
  '250-DSN',
  '250-ENHANCEDSTATUSCODES',
  '250-AUTH LOGIN XOAUTH2',
  '250-8BITMIME',
  '250-BINARYMIME',
  '250-CHUNKING',
  '250 SMTPUTF8',
].join('\r\n');

/** The same, as the proxy passes it on to a password client. */
const CLIENT_EHLO = [
  '250-proxy.test Hello mutt.local',
  '250-SIZE 157286400',
  '250-PIPELINING',
  '250-DSN',
  '250-ENHANCEDSTATUSCODES',
  '250-8BITMIME',
  '250-BINARYMIME',
  '250-CHUNKING',
  '250-SMTPUTF8',
  '250 AUTH PLAIN LOGIN',
];

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
  });
}

beforeAll(async () => {
  ca = await testCa();
  upstream = await ScriptedUpstream.start(ca, 'starttls');
});
afterAll(async () => {
  await upstream.close();
  await ca.dispose();
});
beforeEach(async () => {
  auth = accounts();
  proxy = await startSessionUnderTest({
    protocol: 'SMTP',
    session: smtpSession,
    auth,
    upstream,
    upstreamSecurity: 'starttls',
    caPem: ca.caPem,
  });
});
afterEach(async () => {
  await proxy.close();
});

/** The server's side of the opening on port 587: greeting, EHLO, STARTTLS, TLS. */
async function serverStartsTls(plain: Conversation): Promise<Conversation> {
  plain.send('220 SN4PR0501CA0046.outlook.office365.com Microsoft ESMTP MAIL Service ready');
  await plain.expect('EHLO proxy.test');
  plain.send(
    '250-SN4PR0501CA0046.outlook.office365.com Hello [203.0.113.7]\r\n250-SIZE 157286400\r\n250-STARTTLS\r\n250 SMTPUTF8',
  );
  await plain.expect('STARTTLS');
  plain.send('220 2.0.0 SMTP server ready');
  // Synchronously after the 220, before the proxy's ClientHello can be read as text.
  return upstream.startTls(plain);
}

/** A client connected through the proxy to a server that has done its STARTTLS. */
async function connected(): Promise<{ client: Conversation; server: Conversation }> {
  const client = await proxy.connect();
  const server = await serverStartsTls(await upstream.next());
  await client.expect('220 proxy.test ESMTP oauth2-mail-proxy ready');
  return { client, server };
}

/** Every line of one reply (up to the line without a dash). */
async function reply(client: Conversation): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await client.line();
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines;
  }
}

/** The client's EHLO, forwarded over TLS and answered with the rewritten extensions. */
async function ehlo(client: Conversation, server: Conversation): Promise<void> {
  client.send('EHLO mutt.local');
  await server.expect('EHLO mutt.local');
  server.send(OFFICE365_EHLO);
  expect(await reply(client)).toEqual(CLIENT_EHLO);
}

/** The server's side of a successful XOAUTH2 login, as Office 365 answers it. */
async function serverAcceptsToken(server: Conversation): Promise<void> {
  await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
  server.send('235 2.7.0 Authentication successful');
}

describe('SMTP before AUTH', () => {
  it('does the upstream STARTTLS itself, greets, and rewrites EHLO for a password client', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('NOOP');
    await client.expect('250 2.0.0 OK');
    client.send('RSET');
    await client.expect('250 2.0.0 OK');
    client.send('QUIT');
    await client.expect('221 2.0.0 proxy.test Bye');
    await client.closedByPeer();
    // NOOP and RSET were answered here; the server's next line is our goodbye.
    await server.expect('QUIT');
    await server.closedByPeer();
  });

  it('forwards HELO without extensions, and wants EHLO before AUTH', async () => {
    const { client, server } = await connected();
    client.send(`AUTH PLAIN ${PLAIN}`);
    await client.expect('503 5.5.1 Send EHLO first');
    client.send('HELO old.client');
    await server.expect('HELO old.client');
    server.send('250 SN4PR0501CA0046.outlook.office365.com Hello [203.0.113.7]');
    await client.expect('250 proxy.test Hello old.client');
    client.send(`AUTH PLAIN ${PLAIN}`);
    await client.expect('503 5.5.1 Send EHLO first');
    client.send('EHLO');
    await client.expect('501 5.5.4 Syntax: EHLO hostname');
    expect(auth.logins).toEqual([]);
  });

  it('passes on a refused EHLO as the server worded it', async () => {
    const { client, server } = await connected();
    client.send('EHLO bad..name');
    await server.expect('EHLO bad..name');
    server.send('501-5.5.4 Invalid domain name\r\n501 5.5.4 Try again');
    expect(await reply(client)).toEqual(['501-5.5.4 Invalid domain name', '501 5.5.4 Try again']);
  });

  it('refuses other commands until the client authenticates, without leaking them upstream', async () => {
    const { client, server } = await connected();
    client.send('VRFY postmaster');
    await client.expect(
      '502 5.5.1 Command not available before authentication; authenticate with AUTH PLAIN or AUTH LOGIN first',
    );
    client.send('STARTTLS');
    await client.expect(
      '502 5.5.1 STARTTLS is not offered here (configure local_certificate_path, local_key_path and local_starttls)',
    );
    client.send('QUIT');
    await client.expect(/^221 /);
    await server.expect('QUIT');
  });

  it('passes a client that never authenticates through, so it sees the server’s own 530', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('MAIL FROM:<john.smith@example.com>');
    await server.expect('MAIL FROM:<john.smith@example.com>');
    server.send(
      '530 5.7.57 Client not authenticated to send mail. [SN4PR0501CA0046.namprd05.prod.outlook.com]',
    );
    await client.expect(
      '530 5.7.57 Client not authenticated to send mail. [SN4PR0501CA0046.namprd05.prod.outlook.com]',
    );
    expect(auth.logins).toEqual([]);
  });
});

describe('SMTP AUTH', () => {
  it('turns AUTH PLAIN with an initial response into AUTH XOAUTH2, then passes bytes through untouched', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
    expect(auth.logins).toEqual([USER]);

    // BDAT with binary content: no line handling of any kind after the login.
    const chunk = Buffer.from([0x00, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0xff, 0x0a, 0x2e, 0x2e]);
    client.sendRaw(Buffer.concat([Buffer.from(`BDAT ${chunk.length} LAST\r\n`), chunk]));
    await server.expect(`BDAT ${chunk.length} LAST`);
    expect(await server.bytes(chunk.length)).toEqual(chunk);
    server.send('250 2.6.0 Queued mail for delivery');
    await client.expect('250 2.6.0 Queued mail for delivery');
  });

  it('takes AUTH PLAIN after an empty 334, and lets the client cancel with *', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('AUTH PLAIN');
    await client.expect('334 ');
    client.send('*');
    await client.expect('501 5.7.0 Authentication cancelled');
    client.send('AUTH PLAIN');
    await client.expect('334 ');
    client.send(b64(`${USER}\0${USER}\0${PASSWORD}`));
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
  });

  it('takes AUTH LOGIN with the user name inline', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH LOGIN ${b64(USER)}`);
    await client.expect('334 UGFzc3dvcmQ6');
    client.send(b64(PASSWORD));
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
  });

  it('takes AUTH LOGIN with both prompts, and lets the client cancel at the password', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('AUTH LOGIN');
    await client.expect('334 VXNlcm5hbWU6');
    client.send(b64(USER));
    await client.expect('334 UGFzc3dvcmQ6');
    client.send('*');
    await client.expect('501 5.7.0 Authentication cancelled');
    client.send('auth login');
    await client.expect('334 VXNlcm5hbWU6');
    client.send(b64(USER));
    await client.expect('334 UGFzc3dvcmQ6');
    client.send(b64(PASSWORD));
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
  });

  it('refuses malformed base64, odd PLAIN contents and other mechanisms, and stays usable', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('AUTH PLAIN not*base64');
    await client.expect(
      '501 5.5.2 Malformed AUTH PLAIN response (expected base64 of NUL user NUL password)',
    );
    client.send(`AUTH PLAIN ${b64(`someone.else\0${USER}\0${PASSWORD}`)}`);
    await client.expect(
      '501 5.5.2 Malformed AUTH PLAIN response (expected base64 of NUL user NUL password)',
    );
    client.send('AUTH LOGIN %%%%');
    await client.expect('501 5.5.2 Malformed AUTH LOGIN user name (expected base64)');
    client.send('AUTH CRAM-MD5');
    await client.expect('504 5.5.4 Only AUTH PLAIN and AUTH LOGIN are supported here');
    client.send('AUTH');
    await client.expect('501 5.5.4 Syntax: AUTH mechanism [initial-response]');
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
    expect(auth.logins).toEqual([USER]);
  });

  it('answers a wrong password with 535 5.7.8 and lets the client try again on the same connection', async () => {
    const connectionsBefore = upstream.connections;
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${b64(`\0${USER}\0wrong`)}`);
    await client.expect(`535 5.7.8 Wrong password for ${USER}`);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
    expect(upstream.connections).toBe(connectionsBefore + 1);
  });

  it('answers a pending authorisation with 454 4.7.0 so the queue retries', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${b64('\0pending@example.com\0pw')}`);
    await client.expect(
      '454 4.7.0 Authorisation needed: run oauth2-mail-proxy authorize pending@example.com',
    );
  });

  it('ends the XOAUTH2 error challenge itself and tells the client the server refused the token', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    // Refused, refreshed and tried once more with a second AUTH on the same connection: it stands.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
      server.send(
        `334 ${b64('{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}')}`,
      );
      await server.expect('');
      server.send(
        '535 5.7.3 Authentication unsuccessful [SN4PR0501CA0046.namprd05.prod.outlook.com]',
      );
    }
    await client.expect(
      `535 5.7.8 localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server rejected the token (status 401): ` +
        '535 5.7.3 Authentication unsuccessful [SN4PR0501CA0046.namprd05.prod.outlook.com]. ' +
        `If this persists, re-authorise the account: oauth2-mail-proxy authorize ${USER}`,
    );
    expect(auth.rejected).toEqual([USER, USER]);

    // The server is back in its pre-AUTH state; the next attempt goes over the same connection.
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
  });

  it('cancels with * a server that keeps challenging after the empty line', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
      server.send(`334 ${b64('{"status":"400"}')}`);
      await server.expect('');
      server.send('334 ');
      await server.expect('*');
      server.send('501 5.7.0 Authentication cancelled');
    }
    await client.expect(
      /^535 5\.7\.8 .*the server rejected the token \(status 400\): 501 5\.7\.0 Authentication cancelled\. If this persists/,
    );
    client.send('QUIT');
    await server.expect('QUIT');
  });

  it('does not blame the token when the server does not take XOAUTH2 at all', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
    server.send('504 5.7.4 Unrecognized authentication type');
    await client.expect(
      `535 5.7.8 localhost:${upstream.port} refused the OAuth2 login for ${USER}: the server said 504 5.7.4 Unrecognized authentication type`,
    );
    expect(auth.rejected).toEqual([]);
  });

  it('says re-authorising will not help when the tenant has SMTP AUTH disabled, and keeps the token', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
    server.send(
      '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. ' +
        'Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0501CA0046.namprd05.prod.outlook.com]',
    );
    const line = await client.expect(/^535 5\.7\.139 /);
    expect(line).toContain(
      `localhost:${upstream.port} refused the OAuth2 login for ${USER} because SMTP AUTH is disabled`,
    );
    expect(line).toContain('SmtpClientAuthentication is disabled for the Tenant');
    expect(line).toContain(
      'Re-authorising will not help: the tenant administrator must enable SMTP AUTH',
    );
    expect(auth.rejected).toEqual([]);
  });

  it('turns a temporary upstream failure into 454 4.7.0 and keeps the token', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
    server.send('454 4.7.0 Temporary authentication failure');
    await client.expect(
      `454 4.7.0 localhost:${upstream.port} could not check the OAuth2 login for ${USER}: ` +
        'the server said 454 4.7.0 Temporary authentication failure. Try again later',
    );
    expect(auth.rejected).toEqual([]);
  });

  it('delivers MAIL/RCPT/DATA pipelined in the same write as AUTH intact, after the 235', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.sendRaw(
      `AUTH PLAIN ${PLAIN}\r\nMAIL FROM:<${USER}> SIZE=120\r\nRCPT TO:<jane@example.org>\r\nDATA\r\n`,
    );
    await serverAcceptsToken(server);
    await server.expect(`MAIL FROM:<${USER}> SIZE=120`);
    await server.expect('RCPT TO:<jane@example.org>');
    await server.expect('DATA');
    server.send(
      '250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>',
    );
    await client.expect('235 2.7.0 Authentication successful');
    await client.expect('250 2.1.0 Sender OK');
    await client.expect('250 2.1.5 Recipient OK');
    await client.expect(/^354 /);

    const body = Buffer.from(
      'Subject: hi\r\n\r\n..dot-stuffed line\r\n\u00e9t\u00e9 in UTF-8\r\n.\r\n',
      'utf8',
    );
    client.sendRaw(body);
    expect(await server.bytes(body.length)).toEqual(body);
    server.send('250 2.0.0 OK <queued@example.org>');
    await client.expect('250 2.0.0 OK <queued@example.org>');
  });

  it('never writes the password, its base64 or the token to the log, even at debug level', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('AUTH LOGIN');
    await client.expect('334 VXNlcm5hbWU6');
    client.send(b64(USER));
    await client.expect('334 UGFzc3dvcmQ6');
    client.send(b64('wrong password'));
    await client.expect(/^535 5\.7\.8 /);
    client.send(b64(PASSWORD)); // an out-of-step client sending its password as a command
    await client.expect(/^502 /);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect(/^235 /);
    client.close();
    await new Promise((r) => setTimeout(r, 50));
    const text = proxy.logs.text;
    expect(text).toContain('"event":"login"');
    expect(text).toContain('"verb":"AUTH"');
    for (const secret of [
      PASSWORD,
      b64(PASSWORD),
      'wrong password',
      b64('wrong password'),
      PLAIN,
      TOKEN,
      XOAUTH2,
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('SMTP when the upstream fails', () => {
  it('answers 421 naming the server when it refuses STARTTLS, and closes both sides', async () => {
    const client = await proxy.connect();
    const server = await upstream.next();
    server.send('220 smtp.example.com ESMTP');
    await server.expect('EHLO proxy.test');
    server.send('250-smtp.example.com\r\n250 STARTTLS');
    await server.expect('STARTTLS');
    server.send('454 4.7.0 TLS not available');
    await client.expect(
      `421 4.4.2 Cannot connect to localhost:${upstream.port}: the server refused STARTTLS: 454 4.7.0 TLS not available. Try again later`,
    );
    await client.closedByPeer();
    await server.closedByPeer();
  });

  it('answers 421 when the server greets with 554', async () => {
    const client = await proxy.connect();
    const server = await upstream.next();
    server.send('554 5.3.2 Service busy, closing transmission channel');
    await client.expect(
      `421 4.4.1 Cannot connect to localhost:${upstream.port}: the server refused the connection: ` +
        '554 5.3.2 Service busy, closing transmission channel. Try again later',
    );
    await client.closedByPeer();
  });

  it('answers 421 naming the server when it is unreachable', async () => {
    const port = upstream.port;
    await upstream.close();
    try {
      const client = await proxy.connect();
      await client.expect(
        `421 4.4.1 Cannot connect to localhost:${port}: connection refused. Try again later`,
      );
      await client.closedByPeer();
    } finally {
      upstream = await ScriptedUpstream.start(ca, 'starttls');
    }
  });

  it('answers 421 when the server goes away before the client authenticates', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send('EHLO mutt.local');
    await server.expect('EHLO mutt.local');
    server.send('421 4.4.2 smtp.example.com Connection timed out');
    await client.expect(
      `421 4.4.2 Lost the connection to localhost:${upstream.port}: the server is closing the connection: ` +
        '421 4.4.2 smtp.example.com Connection timed out. Try again later',
    );
    await client.closedByPeer();
  });

  it('answers 421 when the server closes the connection under an AUTH', async () => {
    const { client, server } = await connected();
    await ehlo(client, server);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
    server.close();
    await client.expect(
      `421 4.4.2 Lost the connection to localhost:${upstream.port}: the server closed the connection. Try again later`,
    );
    await client.closedByPeer();
  });
});

describe('SMTP limits before AUTH', () => {
  async function withLimits(
    limits: Parameters<typeof startSessionUnderTest>[0]['limits'],
  ): Promise<void> {
    await proxy.close();
    proxy = await startSessionUnderTest({
      protocol: 'SMTP',
      session: smtpSession,
      auth,
      upstream,
      upstreamSecurity: 'starttls',
      caPem: ca.caPem,
      limits,
    });
  }

  it('closes an idle client with 421 4.4.2 and says QUIT upstream', async () => {
    await withLimits({ idleTimeoutMs: 300 });
    const { client, server } = await connected();
    await client.expect(
      '421 4.4.2 proxy.test Idle timeout before authentication, closing connection',
      5_000,
    );
    await client.closedByPeer();
    await server.expect('QUIT');
  });

  it('arms the idle clock only while it waits for the client, leaving nothing behind per command', async () => {
    const { client } = await connected();
    for (let i = 0; i < 20; i += 1) {
      client.send('NOOP');
      await client.expect('250 2.0.0 OK');
    }
    const [socket] = proxy.listener.connections;
    // The one wait in progress; one left behind per command would soon trip Node's
    // MaxListenersExceededWarning.
    expect(socket?.listenerCount('timeout')).toBe(1);
  });

  it('closes after too many commands with 421', async () => {
    await withLimits({ maxCommands: 3 });
    const { client } = await connected();
    for (let i = 0; i < 3; i += 1) {
      client.send('NOOP');
      await client.expect('250 2.0.0 OK');
    }
    client.send('NOOP');
    await client.expect(
      '421 4.7.0 proxy.test Too many commands before authentication, closing connection',
    );
    await client.closedByPeer();
  });

  it('closes on an overlong line with 500 5.5.6', async () => {
    const { client } = await connected();
    client.send(`EHLO ${'x'.repeat(70_000)}`);
    await client.expect('500 5.5.6 Line too long');
    await client.closedByPeer();
  });
});

describe('SMTP to an implicit-TLS server (port 465)', () => {
  let implicit: ScriptedUpstream;
  let implicitProxy: SessionUnderTest;
  beforeAll(async () => {
    implicit = await ScriptedUpstream.start(ca, 'implicit');
  });
  afterAll(async () => {
    await implicit.close();
  });
  beforeEach(async () => {
    implicitProxy = await startSessionUnderTest({
      protocol: 'SMTP',
      session: smtpSession,
      auth,
      upstream: implicit,
      upstreamSecurity: 'implicit',
      caPem: ca.caPem,
    });
  });
  afterEach(async () => {
    await implicitProxy.close();
  });

  it('greets once the TLS server has, forwards EHLO without any STARTTLS, and logs in', async () => {
    const client = await implicitProxy.connect();
    const server = await implicit.next();
    server.send('220 smtp.gmail.com ESMTP ready');
    await client.expect('220 proxy.test ESMTP oauth2-mail-proxy ready');
    client.send('EHLO mutt.local');
    await server.expect('EHLO mutt.local');
    server.send(
      '250-smtp.gmail.com at your service\r\n250-SIZE 35882577\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250 CHUNKING',
    );
    expect(await reply(client)).toEqual([
      '250-proxy.test Hello mutt.local',
      '250-SIZE 35882577',
      '250-CHUNKING',
      '250 AUTH PLAIN LOGIN',
    ]);
    client.send(`AUTH PLAIN ${PLAIN}`);
    await server.expect(`AUTH XOAUTH2 ${XOAUTH2}`);
    server.send('235 2.7.0 Accepted');
    await client.expect('235 2.7.0 Accepted');
    client.send('QUIT');
    await server.expect('QUIT');
    server.send('221 2.0.0 closing connection');
    await client.expect('221 2.0.0 closing connection');
  });
});

describe('SMTP with local STARTTLS', () => {
  let localProxy: SessionUnderTest;
  beforeEach(async () => {
    const [key, cert] = await Promise.all([readFile(ca.keyFile), readFile(ca.certFile)]);
    localProxy = await startSessionUnderTest({
      protocol: 'SMTP',
      session: smtpSession,
      auth,
      upstream,
      upstreamSecurity: 'starttls',
      caPem: ca.caPem,
      localTls: { context: tls.createSecureContext({ key, cert }), implicit: false },
    });
  });
  afterEach(async () => {
    await localProxy.close();
  });

  it('offers STARTTLS until the client is on TLS, and wants EHLO again after it', async () => {
    const plainClient = await localProxy.connect();
    const server = await serverStartsTls(await upstream.next());
    await plainClient.expect('220 proxy.test ESMTP oauth2-mail-proxy ready');
    plainClient.send('EHLO mutt.local');
    await server.expect('EHLO mutt.local');
    server.send(OFFICE365_EHLO);
    expect(await reply(plainClient)).toEqual([
      ...CLIENT_EHLO.slice(0, -1),
      '250-AUTH PLAIN LOGIN',
      '250 STARTTLS',
    ]);
    plainClient.send('STARTTLS');
    await plainClient.expect('220 2.0.0 Ready to start TLS');
    const client = await plainClient.startTls({ ca: ca.caPem, servername: 'localhost' });

    client.send(`AUTH PLAIN ${PLAIN}`);
    await client.expect('503 5.5.1 Send EHLO first');
    await ehlo(client, server);
    client.send('STARTTLS');
    await client.expect('503 5.5.1 TLS is already active');
    client.send(`AUTH PLAIN ${PLAIN}`);
    await serverAcceptsToken(server);
    await client.expect('235 2.7.0 Authentication successful');
    client.send('NOOP');
    await server.expect('NOOP');
  });

  it('closes when the client sends commands behind STARTTLS before the handshake', async () => {
    const client = await localProxy.connect();
    const server = await serverStartsTls(await upstream.next());
    await client.expect(/^220 /);
    client.sendRaw('STARTTLS\r\nAUTH PLAIN injected\r\n');
    await client.expect('554 5.5.1 Data sent after STARTTLS before the TLS handshake');
    await client.closedByPeer();
    await server.expect('QUIT');
  });
});

describe('SMTP upstream connection lifetime', () => {
  it('drops the upstream connection when the client leaves before AUTH', async () => {
    const { client, server } = await connected();
    client.close();
    await server.expect('QUIT');
    await vi.waitFor(() => expect(upstream.rawSockets.size).toBe(0), { timeout: 5_000 });
  });
});

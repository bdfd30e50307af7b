/** The IMAP side of the benchmark client: log in either way, fetch in bulk, NOOP. */
import type { RouteName } from '../interleave.js';
import { lastLine, Wire, type Endpoint } from '../wire.js';
import { expectReply, xoauth2, type Credentials } from './credentials.js';

const FETCH_TAG = 'F9';

/**
 * Connects and logs in: `direct` with `AUTHENTICATE XOAUTH2` over TLS as an OAuth2-capable client
 * would (`stunnel`: the same in plain text, stunnel adding the TLS), `proxy` with a plain `LOGIN`
 * as fetchmail does against the proxy.
 */
export async function imapLogin(
  route: RouteName,
  endpoint: Endpoint,
  credentials: Credentials,
): Promise<Wire> {
  const wire = await Wire.connect(endpoint);
  expectReply(await wire.line(), /^\* OK/, 'IMAP greeting');
  if (route !== 'proxy') {
    wire.send(`L1 AUTHENTICATE XOAUTH2 ${xoauth2(credentials.user, credentials.accessToken)}\r\n`);
  } else {
    wire.send(`L1 LOGIN ${credentials.user} "${credentials.password}"\r\n`);
  }
  const reply = await wire.lineMatching((line) => line.startsWith('L1 ') || line.startsWith('+ '));
  if (reply.startsWith('+ ')) {
    // XOAUTH2's error challenge: answer it to get the real refusal.
    wire.send('\r\n');
    expectReply(
      await wire.lineMatching((line) => line.startsWith('L1 ')),
      /^L1 OK/,
      `IMAP ${route} login`,
    );
  }
  expectReply(reply, /^L1 OK/, `IMAP ${route} login`);
  return wire;
}

/** `EXAMINE INBOX` (read-only, so the FETCHes leave the mailbox as it was). */
export async function imapExamineInbox(wire: Wire): Promise<void> {
  wire.send('E EXAMINE INBOX\r\n');
  expectReply(await wire.lineMatching((line) => line.startsWith('E ')), /^E OK/, 'IMAP EXAMINE');
}

/** `FETCH 1:count BODY.PEEK[]`; returns the response's size in bytes. */
export async function imapFetchAll(wire: Wire, count: number): Promise<number> {
  wire.send(`${FETCH_TAG} FETCH 1:${count} BODY.PEEK[]\r\n`);
  let verdict = '';
  const bytes = await wire.receiveBulk((tail) => {
    const line = lastLine(tail);
    if (!line.startsWith(`${FETCH_TAG} `)) return false;
    verdict = line;
    return true;
  });
  expectReply(verdict, new RegExp(`^${FETCH_TAG} OK`), 'IMAP FETCH');
  return bytes;
}

/** One `NOOP` round trip. */
export async function imapNoop(wire: Wire): Promise<void> {
  wire.send('N NOOP\r\n');
  expectReply(await wire.lineMatching((line) => line.startsWith('N ')), /^N OK/, 'IMAP NOOP');
}

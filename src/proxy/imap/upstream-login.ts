import type net from 'node:net';
import type { UpstreamCredentials } from '../../auth/types.js';
import { LineReader } from '../line-reader.js';
import { describeXoauth2Challenge, encodeXoauth2 } from '../sasl.js';
import { UpstreamError } from '../upstream.js';

/** Our tag for the one command we send upstream; the client never sees it. */
const TAG = 'P1';

export type ImapUpstreamLogin =
  | {
      readonly ok: true;
      /** The server's text after `OK`, e.g. `[CAPABILITY IMAP4rev1 ...] Logged in`. */
      readonly text: string;
      /** Untagged lines the server sent before its tagged OK, passed on to the client. */
      readonly untagged: readonly string[];
      /** Bytes already read past the tagged OK (normally none). */
      readonly pending: Buffer;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Logs in to an IMAP server with SASL XOAUTH2: waits for the greeting, sends the initial response
 * and, when the server answers with an error challenge, sends the empty line that ends the
 * exchange so the tagged `NO` arrives.
 */
export async function loginImapUpstream(
  socket: net.Socket,
  credentials: UpstreamCredentials,
  target: string,
  maxLineBytes: number,
): Promise<ImapUpstreamLogin> {
  const reader = new LineReader(socket, maxLineBytes);
  const next = async (): Promise<string> => {
    const line = await reader.readLine();
    if (line === null) throw new UpstreamError('closed', target, 'the server closed the connection during login');
    return line;
  };

  const greeting = await next();
  if (/^\* BYE/i.test(greeting)) throw new UpstreamError('unreachable', target, `the server refused the connection: ${greeting.slice(2)}`);
  if (!/^\* OK/i.test(greeting)) throw new UpstreamError('closed', target, `unexpected greeting: ${greeting.slice(0, 80)}`);

  socket.write(`${TAG} AUTHENTICATE XOAUTH2 ${encodeXoauth2(credentials.user, credentials.accessToken)}\r\n`);

  const untagged: string[] = [];
  let reason = 'the server rejected the token';
  for (;;) {
    const line = await next();
    if (line.startsWith('+')) {
      reason = describeXoauth2Challenge(line.slice(1).trim());
      socket.write('\r\n');
    } else if (line.startsWith(`${TAG} `)) {
      const [, status = '', text = ''] = /^\S+ (\S+) ?(.*)$/.exec(line) ?? [];
      if (status.toUpperCase() === 'OK') return { ok: true, text, untagged, pending: reader.release() };
      reader.release();
      return { ok: false, reason: text ? `${reason}: ${text}` : reason };
    } else if (line.startsWith('* ')) {
      // Only CAPABILITY is sent here in practice; the client may want it.
      untagged.push(line);
    }
  }
}

import type net from 'node:net';
import type { UpstreamCredentials } from '../../auth/types.js';
import { LineReader, LineTooLongError } from '../line-reader.js';
import { describeXoauth2Challenge, encodeXoauth2 } from '../sasl.js';
import { UpstreamError } from '../upstream.js';

export type Pop3UpstreamLogin =
  | {
      readonly ok: true;
      /** The server's text after `+OK`, e.g. `Logged in.` (may be empty). */
      readonly text: string;
      /** Bytes already read past the `+OK` (normally none). */
      readonly pending: Buffer;
    }
  | {
      readonly ok: false;
      /**
       * True when the server refused the token itself (an XOAUTH2 error challenge, `[AUTH]`, or no
       * response code at all). False when its `-ERR` names another cause, which `reason` then
       * carries verbatim with its response code: the client should see `[IN-USE]` or `[SYS/TEMP]`,
       * and a good token must not be thrown away for a locked mailbox.
       */
      readonly tokenRejected: boolean;
      readonly reason: string;
    };

export interface Pop3UpstreamLoginOptions {
  /** `host:port`, for messages. */
  readonly target: string;
  readonly maxLineBytes: number;
  /** How long the server may stay silent during the login. */
  readonly timeoutMs: number;
}

/** RFC 2449 / 3206 response codes that blame something other than the credentials. */
const NOT_ABOUT_THE_TOKEN = new Set(['SYS', 'IN-USE', 'LOGIN-DELAY']);

/**
 * Logs in to a POP3 server with SASL XOAUTH2 (RFC 5034 `AUTH` with the initial response on the
 * command line, which Dovecot and Office 365 both accept): waits for the greeting, sends the
 * token and, when the server answers with an error challenge, sends the empty line that ends the
 * exchange so the `-ERR` arrives.
 */
export async function loginPop3Upstream(
  socket: net.Socket,
  credentials: UpstreamCredentials,
  options: Pop3UpstreamLoginOptions,
): Promise<Pop3UpstreamLogin> {
  const { target } = options;
  const reader = new LineReader(socket, options.maxLineBytes);
  // The connect timeout ended with the handshake; a server that then says nothing would hold the
  // client (and this socket) until the client's own idle timeout, so it gets a bound of its own.
  socket.setTimeout(options.timeoutMs, () => {
    socket.destroy(new UpstreamError('timeout', target, `no answer within ${Math.round(options.timeoutMs / 1000)} s during login`));
  });
  const next = async (): Promise<string> => {
    let line: string | null;
    try {
      line = await reader.readLine();
    } catch (err) {
      throw asUpstreamError(err, target);
    }
    if (line === null) throw new UpstreamError('closed', target, 'the server closed the connection during login');
    return line;
  };

  try {
    const greeting = await next();
    if (/^-ERR/i.test(greeting)) throw new UpstreamError('unreachable', target, `the server refused the connection: ${greeting.slice(4).trim()}`);
    if (!/^\+OK/i.test(greeting)) throw new UpstreamError('closed', target, `unexpected greeting: ${greeting.slice(0, 80)}`);

    socket.write(`AUTH XOAUTH2 ${encodeXoauth2(credentials.user, credentials.accessToken)}\r\n`);

    let challenge: string | undefined;
    for (;;) {
      const line = await next();
      if (/^\+OK(?: |$)/i.test(line)) return { ok: true, text: line.slice(3).trim(), pending: reader.release() };
      if (/^-ERR(?: |$)/i.test(line)) {
        reader.release();
        return refusal(line.slice(4).trim(), challenge);
      }
      if (line.startsWith('+')) {
        // The first challenge is the error report; the empty line acknowledges it. A server that
        // keeps asking gets `*`, which RFC 5034 says it must answer with `-ERR`.
        socket.write(challenge === undefined ? '\r\n' : '*\r\n');
        challenge ??= describeXoauth2Challenge(line.slice(1).trim());
        continue;
      }
      throw new UpstreamError('closed', target, `unexpected reply to AUTH XOAUTH2: ${line.slice(0, 80)}`);
    }
  } finally {
    socket.setTimeout(0);
  }
}

function refusal(text: string, challenge: string | undefined): Pop3UpstreamLogin {
  const code = /^\[([^\]/]+)/.exec(text)?.[1]?.toUpperCase();
  if (code !== undefined && NOT_ABOUT_THE_TOKEN.has(code)) return { ok: false, tokenRejected: false, reason: text };
  const reason = challenge ?? 'the server rejected the token';
  return { ok: false, tokenRejected: true, reason: text ? `${reason}: ${text}` : reason };
}

function asUpstreamError(err: unknown, target: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof LineTooLongError) return new UpstreamError('closed', target, `the server sent a line longer than ${err.limit} bytes`);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE') return new UpstreamError('closed', target, 'connection closed by the server');
  return new UpstreamError('closed', target, err instanceof Error ? err.message : String(err));
}

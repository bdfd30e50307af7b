import type net from 'node:net';
import { LineReader, LineTooLongError } from './line-reader.js';
import { UpstreamError } from './upstream.js';

/**
 * Whatever went wrong while the proxy itself was talking to the upstream (a reset, a TLS alert, a
 * line past the limit), as an `UpstreamError` naming the server, so that sessions answer it as a
 * server failure rather than let it escape as an unexpected one.
 */
export function asUpstreamError(err: unknown, target: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (err instanceof LineTooLongError)
    return new UpstreamError(
      'closed',
      target,
      `the server sent a line longer than ${err.limit} bytes`,
    );
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return new UpstreamError('closed', target, 'connection closed by the server');
  return new UpstreamError('closed', target, err instanceof Error ? err.message : String(err));
}

/**
 * Runs `work`, which waits for the upstream, with a bound on how long the server may stay silent.
 * The connect timeout ends with the handshake; a server that then says nothing would otherwise
 * hold the client until the client itself gives up. On silence the socket is destroyed with a
 * `timeout` error; every failure comes out as an `UpstreamError`.
 */
export async function answerWithin<T>(
  socket: net.Socket,
  target: string,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  const onSilence = (): void => {
    socket.destroy(
      new UpstreamError('timeout', target, `no answer within ${describeDuration(timeoutMs)}`),
    );
  };
  socket.setTimeout(timeoutMs, onSilence);
  try {
    return await work();
  } catch (err) {
    throw asUpstreamError(err, target);
  } finally {
    // With the listener too: `setTimeout(0)` alone leaves one `timeout` listener behind per call.
    socket.setTimeout(0, onSilence);
  }
}

/**
 * Most a server may send us, all lines together, before its login answer: a real greeting and
 * CAPABILITY take a few KiB. Without it, a server streaming endless untagged lines or challenges
 * would grow the daemon until it dies, taking every other session with it.
 */
export const MAX_UPSTREAM_LOGIN_BYTES = 256 * 1024;

export interface UpstreamLinesOptions {
  readonly maxLineBytes: number;
  /** How long the server may stay silent while we wait for a line. */
  readonly silenceTimeoutMs: number;
}

/**
 * The proxy's own line-by-line login conversation with an IMAP or POP3 upstream: each wait is
 * bounded, and each failure, a close included, is an `UpstreamError` naming the server.
 */
export class UpstreamLines {
  private readonly reader: LineReader;
  private received = 0;

  constructor(
    private readonly socket: net.Socket,
    /** `host:port`, for messages. */
    readonly target: string,
    private readonly options: UpstreamLinesOptions,
  ) {
    this.reader = new LineReader(socket, options.maxLineBytes);
  }

  /** The server's next line, without its line ending. */
  async next(): Promise<string> {
    const line = await answerWithin(this.socket, this.target, this.options.silenceTimeoutMs, () =>
      this.reader.readLine(),
    );
    if (line === null)
      throw new UpstreamError(
        'closed',
        this.target,
        'the server closed the connection during login',
      );
    this.received += Buffer.byteLength(line) + 2;
    if (this.received > MAX_UPSTREAM_LOGIN_BYTES)
      throw new UpstreamError(
        'closed',
        this.target,
        `the server sent more than ${MAX_UPSTREAM_LOGIN_BYTES} bytes without finishing the login`,
      );
    return line;
  }

  /** Sends one line; the CRLF is added here. */
  send(line: string): void {
    if (this.socket.writable) this.socket.write(`${line}\r\n`);
  }

  /** Stops reading; returns the bytes already read past the last line, for the splice. */
  release(): Buffer {
    return this.reader.release();
  }
}

function describeDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

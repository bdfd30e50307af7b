/**
 * The benchmark's client side of a connection: as little work per byte as possible, so the
 * client is never what limits a measurement. Dialogue lines are read from a small buffer; bulk
 * responses are counted, not kept (only the last bytes of a chunk are looked at, to see the end).
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

const CR = 0x0d;
const LF = 0x0a;
/** Enough to hold a final reply line split over two chunks. */
const TAIL_BYTES = 512;
const EMPTY = Buffer.alloc(0);

/** How long any single wait may take before the benchmark calls the connection stalled. */
export const STALL_MS = 30_000;

/** Decides, from the end of what has arrived, whether a bulk response is complete. */
export type EndTest = (tail: Buffer) => boolean;

interface Drain {
  bytes: number;
  previous: Buffer;
  readonly isEnd: EndTest;
  readonly done: (bytes: number) => void;
}

/** Where to reach a server and what to trust on TLS. */
export interface Endpoint {
  readonly port: number;
  /** CA certificate (PEM) for TLS; absent for plain TCP. */
  readonly ca?: Buffer;
}

/** TLS sessions per port, so the direct client resumes as the proxy does upstream. */
const tlsSessions = new Map<number, Buffer>();

/** One client connection (plain or TLS), with line reads for dialogue and counted bulk reads. */
export class Wire {
  private buffered: Buffer = EMPTY;
  private wake: (() => void) | undefined;
  private drain: Drain | undefined;
  private closed = false;
  private failure: Error | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', (err) => {
      this.failure = err;
      this.wake?.();
    });
  }

  /** Plain TCP to 127.0.0.1, or TLS from the first byte when `endpoint.ca` is set. */
  static async connect(endpoint: Endpoint): Promise<Wire> {
    if (endpoint.ca === undefined) {
      const socket = net.connect({ host: '127.0.0.1', port: endpoint.port });
      await once(socket, 'connect');
      return new Wire(socket);
    }
    const socket = tls.connect({
      host: '127.0.0.1',
      port: endpoint.port,
      ca: [endpoint.ca],
      session: tlsSessions.get(endpoint.port),
    });
    socket.on('session', (session: Buffer) => tlsSessions.set(endpoint.port, session));
    await once(socket, 'secureConnect');
    return new Wire(socket);
  }

  /** Upgrades this plain connection to TLS (SMTP STARTTLS); the old object must not be used again. */
  async startTls(ca: Buffer): Promise<Wire> {
    if (this.buffered.length > 0) throw new Error('data arrived before the TLS handshake');
    this.socket.removeAllListeners('data');
    const socket = tls.connect({ socket: this.socket, host: '127.0.0.1', ca: [ca] });
    await once(socket, 'secureConnect');
    return new Wire(socket);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Writes `chunk` `times` times, waiting whenever the socket asks to. */
  async sendRepeated(chunk: Buffer, times: number): Promise<void> {
    for (let i = 0; i < times; i += 1) {
      if (!this.socket.write(chunk)) await once(this.socket, 'drain');
    }
  }

  /** The next line, without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const lf = this.buffered.indexOf(LF);
      if (lf >= 0) {
        const end = lf > 0 && this.buffered[lf - 1] === CR ? lf - 1 : lf;
        const line = this.buffered.toString('latin1', 0, end);
        this.buffered = lf + 1 === this.buffered.length ? EMPTY : this.buffered.subarray(lf + 1);
        return line;
      }
      await this.arrival();
    }
  }

  /** Lines up to and including the first one `isLast` accepts; returns that last line. */
  async lineMatching(isLast: (line: string) => boolean): Promise<string> {
    for (;;) {
      const line = await this.line();
      if (isLast(line)) return line;
    }
  }

  /**
   * Counts the bytes of a bulk response until `isEnd` sees its end; returns the count. Only the
   * final bytes of a chunk that ends a line are examined.
   */
  receiveBulk(isEnd: EndTest): Promise<number> {
    return new Promise((resolve, reject) => {
      const leftover = this.buffered;
      this.buffered = EMPTY;
      const timer = setTimeout(
        () => reject(new Error(`bulk response stalled for ${STALL_MS} ms`)),
        STALL_MS,
      );
      this.drain = {
        bytes: 0,
        previous: EMPTY,
        isEnd,
        done: (bytes) => {
          clearTimeout(timer);
          resolve(bytes);
        },
      };
      if (leftover.length > 0) this.onData(leftover);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const drain = this.drain;
    if (drain === undefined) {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.wake?.();
      return;
    }
    drain.bytes += chunk.length;
    const length = chunk.length;
    if (length >= 2 && chunk[length - 2] === CR && chunk[length - 1] === LF) {
      const tail =
        length >= TAIL_BYTES
          ? chunk.subarray(length - TAIL_BYTES)
          : Buffer.concat([drain.previous, chunk]).subarray(-TAIL_BYTES);
      if (drain.isEnd(tail)) {
        this.drain = undefined;
        drain.done(drain.bytes);
        return;
      }
    }
    drain.previous =
      length >= TAIL_BYTES
        ? chunk.subarray(length - TAIL_BYTES)
        : Buffer.concat([drain.previous, chunk]).subarray(-TAIL_BYTES);
  }

  private arrival(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('connection closed by the server'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        reject(new Error(`no reply within ${STALL_MS} ms`));
      }, STALL_MS);
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** The last line in `tail` (without CRLF), which must end with CRLF. */
export function lastLine(tail: Buffer): string {
  const start = tail.lastIndexOf('\r\n', tail.length - 3);
  return tail.toString('latin1', start < 0 ? 0 : start + 2, tail.length - 2);
}

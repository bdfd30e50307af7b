/**
 * Mail servers that never stop talking: an endless SMTP greeting or EHLO reply (in clear text,
 * before STARTTLS, where anyone on the path could send it), or endless untagged IMAP lines after
 * AUTHENTICATE. Each writes as fast as the proxy reads, up to a cap, and counts what it got rid of.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCertificate } from './certificates.js';

export interface FloodScript {
  /** Sent at once, CRLF added; none for a flood that starts with the greeting itself. */
  readonly greeting?: string;
  /** The flood starts after a client line matching this; at once when absent. */
  readonly after?: RegExp;
  /** The line sent again and again (CRLF added). */
  readonly line: string;
  /** On TLS from the first byte (IMAP) or plain TCP (SMTP before STARTTLS). */
  readonly tls?: KeyAndCertificate;
}

/** Stops a runaway test: no honest proxy reads this much of one login. */
const CAP_BYTES = 400 * 1024 * 1024;

export class FloodingServer {
  /** Bytes of flood the proxy accepted from us, on the latest connection. */
  sent = 0;
  /** Resolves with `sent` when the proxy hung up on the latest connection (or the cap was hit). */
  private ended: Promise<number> = Promise.resolve(0);
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly script: FloodScript,
  ) {}

  static start(script: FloodScript): Promise<FloodingServer> {
    const onSocket = (socket: net.Socket): void => self.serve(socket);
    const server = script.tls
      ? tls.createServer({ key: script.tls.key, cert: script.tls.cert }, onSocket)
      : net.createServer(onSocket);
    server.on('tlsClientError', () => undefined);
    const self = new FloodingServer(server, script);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(self)));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Bytes sent on the latest connection once the proxy cut it. */
  cutAfter(): Promise<number> {
    return this.ended;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    this.sent = 0;
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        this.sockets.delete(socket);
        resolve(this.sent);
      }),
    );
    const chunk = Buffer.from(`${this.script.line}\r\n`.repeat(512));
    const flood = (): void => {
      while (!socket.destroyed && this.sent < CAP_BYTES) {
        this.sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', flood);
          return;
        }
      }
      socket.destroy();
    };
    if (this.script.greeting !== undefined) socket.write(`${this.script.greeting}\r\n`);
    const after = this.script.after;
    if (after === undefined) return flood();
    let buffered = '';
    const onData = (data: Buffer): void => {
      buffered += data.toString('latin1');
      if (!buffered.split(/\r?\n/).some((line) => after.test(line))) return;
      socket.off('data', onData);
      socket.resume();
      flood();
    };
    socket.on('data', onData);
  }
}

/**
 * A TLS relay in front of a real server (Dovecot) that can cut a session in the middle of a
 * transfer, as a crashing server or a dropped network does, can make the server greet late, and
 * shows which upstream connections the proxy still holds.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCertificate } from './certificates.js';

/** Where the relay forwards to, and the CA its certificate is signed by. */
export interface RelayTarget {
  readonly port: number;
  /** PEM of the CA the real server's certificate is signed by. */
  readonly ca: string;
}

/** One relayed session. */
interface Relayed {
  readonly downstream: tls.TLSSocket;
  upstream?: tls.TLSSocket;
  /** Bytes the real server sent since the cut was armed. */
  bytesSinceArmed: number;
  cut: boolean;
}

/** Relays each TLS connection to the real server, cutting it on demand. */
export class CuttingRelay {
  /** Sessions the proxy opened since start. */
  accepted = 0;
  /** How long a new session waits before the real server is dialled (so it greets that much later). */
  upstreamDelayMs = 0;
  private cuts = 0;
  private cutAfter: number | undefined;
  private readonly sessions = new Set<Relayed>();
  /** The TCP connections under the proxy's TLS sessions, to reset without a close_notify. */
  private readonly rawSockets = new Set<net.Socket>();
  private sessionWaiters: Array<() => void> = [];

  private constructor(
    private readonly server: tls.Server,
    private readonly target: RelayTarget,
  ) {}

  static start(identity: KeyAndCertificate, target: RelayTarget): Promise<CuttingRelay> {
    const server = tls.createServer({ key: identity.key, cert: identity.cert });
    const self = new CuttingRelay(server, target);
    server.on('connection', (socket: net.Socket) => {
      self.rawSockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => self.rawSockets.delete(socket));
    });
    server.on('tlsClientError', () => undefined);
    server.on('secureConnection', (downstream) => self.accept(downstream));
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(self)));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Sessions whose proxy side is still open. */
  get open(): number {
    return this.sessions.size;
  }

  /** Sessions cut so far. */
  get cutCount(): number {
    return this.cuts;
  }

  /** Resolves when the proxy next opens a session through the relay (its TLS handshake done). */
  nextSession(): Promise<void> {
    return new Promise((resolve) => this.sessionWaiters.push(resolve));
  }

  /**
   * Every open session (and any opened later) is reset, both ways, once the real server has sent
   * `bytes` more through it.
   */
  cutAfterServerBytes(bytes: number): void {
    this.cutAfter = bytes;
    for (const session of this.sessions) session.bytesSinceArmed = 0;
  }

  /** Relays untouched from now on. */
  disarm(): void {
    this.cutAfter = undefined;
  }

  close(): Promise<void> {
    for (const session of this.sessions) {
      session.downstream.destroy();
      session.upstream?.destroy();
    }
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(downstream: tls.TLSSocket): void {
    this.accepted += 1;
    const session: Relayed = { downstream, bytesSinceArmed: 0, cut: false };
    this.sessions.add(session);
    downstream.on('error', () => session.upstream?.destroy());
    downstream.once('close', () => {
      this.sessions.delete(session);
      session.upstream?.destroy();
    });
    const waiters = this.sessionWaiters;
    this.sessionWaiters = [];
    for (const wake of waiters) wake();

    const dial = (): void => {
      if (downstream.destroyed) return;
      this.relay(session);
    };
    if (this.upstreamDelayMs > 0) setTimeout(dial, this.upstreamDelayMs);
    else dial();
  }

  private relay(session: Relayed): void {
    const { downstream } = session;
    const upstream = tls.connect({
      host: '127.0.0.1',
      port: this.target.port,
      servername: 'localhost',
      ca: this.target.ca,
    });
    session.upstream = upstream;
    upstream.on('error', () => downstream.destroy());
    upstream.once('close', () => downstream.destroy());
    downstream.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (session.cut) return;
      if (this.cutAfter !== undefined) {
        session.bytesSinceArmed += chunk.length;
        if (session.bytesSinceArmed >= this.cutAfter) return this.cut(session);
      }
      if (!downstream.write(chunk)) upstream.pause();
    });
    downstream.on('drain', () => upstream.resume());
  }

  private cut(session: Relayed): void {
    session.cut = true;
    this.cuts += 1;
    // Reset, no close_notify, as a crash does.
    const raw = [...this.rawSockets].find(
      (socket) => socket.remotePort === session.downstream.remotePort,
    );
    session.upstream?.destroy();
    raw?.resetAndDestroy();
    session.downstream.destroy();
  }
}

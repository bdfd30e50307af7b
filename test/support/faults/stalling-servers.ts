/**
 * Upstreams that never finish a TLS handshake: one that accepts and says nothing, and one that
 * answers so slowly (a byte at a time) that an idle timer alone would never fire.
 */
import net from 'node:net';

/** A listening TCP server of a test, with what it accepted. */
abstract class TrackedServer {
  /** Connections accepted since start. */
  accepted = 0;
  protected readonly sockets = new Set<net.Socket>();

  protected constructor(protected readonly server: net.Server) {}

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connections still open (the proxy has not given up on them). */
  get open(): number {
    return this.sockets.size;
  }

  protected track(socket: net.Socket): void {
    this.accepted += 1;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  protected static listen<T extends TrackedServer>(
    make: (server: net.Server) => T,
    onSocket: (self: T, socket: net.Socket) => void,
  ): Promise<T> {
    // Connections arrive only after listen(), by which time `self` exists.
    const server = net.createServer((socket) => onSocket(self, socket));
    const self = make(server);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(self)));
  }
}

/** Accepts, reads and drops the ClientHello, and never sends a byte back. */
export class SilentServer extends TrackedServer {
  static start(): Promise<SilentServer> {
    return TrackedServer.listen(
      (server) => new SilentServer(server),
      (self, socket) => {
        self.track(socket);
        socket.resume();
      },
    );
  }
}

/**
 * Relays a real TLS server (at `targetPort`) but passes its side of the handshake on one byte
 * every `intervalMs`: bytes keep arriving, the handshake never ends in any useful time.
 */
export class TricklingServer extends TrackedServer {
  static start(targetPort: number, intervalMs: number): Promise<TricklingServer> {
    return TrackedServer.listen(
      (server) => new TricklingServer(server),
      (self, socket) => {
        self.track(socket);
        const upstream = net.connect(targetPort, '127.0.0.1');
        upstream.on('error', () => socket.destroy());
        socket.pipe(upstream);
        const queued: number[] = [];
        upstream.on('data', (chunk: Buffer) => queued.push(...chunk));
        const drip = setInterval(() => {
          const byte = queued.shift();
          if (byte !== undefined && socket.writable) socket.write(Buffer.of(byte));
        }, intervalMs);
        socket.once('close', () => {
          clearInterval(drip);
          upstream.destroy();
        });
      },
    );
  }
}

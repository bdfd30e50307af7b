/**
 * A TLS mail server that speaks just enough IMAP, POP3 or SMTP to fail on cue: it greets, answers
 * the lines it is told to, and hangs up at a chosen point of the login. With another certificate
 * it is also the server whose certificate the proxy must refuse.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { KeyAndCertificate } from './certificates.js';

/** What the server does on each connection. */
export interface ServerScript {
  /** The greeting, without CRLF: `* OK ready`, `+OK ready`, `220 mail ESMTP`. */
  readonly greeting: string;
  /** Lines matching a pattern get the reply (CRLF added to each line of it); others get nothing. */
  readonly replies?: ReadonlyArray<readonly [RegExp, string]>;
  /**
   * When to hang up: right after the greeting, or on the first client line matching the pattern
   * (the line is read, then the connection goes).
   */
  readonly hangUp: 'after-greeting' | RegExp;
  /** `close`: TLS close_notify and FIN, as a server shutting down. `reset`: a TCP RST, as a crash. */
  readonly how: 'close' | 'reset';
  /** Hangs up a connection on which no line has arrived this long: a pre-login idle timeout. */
  readonly idleHangUpMs?: number;
  /**
   * Hangs up, instead of answering, on a line that arrives after the connection sat idle this
   * long: a server whose idle timer fired just as the line was on its way.
   */
  readonly staleAfterMs?: number;
}

/** A TLS server running a {@link ServerScript}, counting what reached it. */
export class ScriptedTlsServer {
  /** The script new connections follow. */
  script: ServerScript = { greeting: '* OK ready', hangUp: /^$/, how: 'close' };
  /** TCP connections accepted. */
  accepted = 0;
  /** TLS handshakes completed: zero means no byte of any login ever reached this server. */
  handshakes = 0;
  /** Handshakes that resumed an earlier TLS session instead of a full key exchange. */
  resumed = 0;
  /** Every line the proxy sent, in order. */
  readonly received: string[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: tls.Server) {}

  static start(identity: KeyAndCertificate): Promise<ScriptedTlsServer> {
    const server = tls.createServer({ key: identity.key, cert: identity.cert });
    const self = new ScriptedTlsServer(server);
    server.on('connection', (socket: net.Socket) => {
      self.accepted += 1;
      self.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => self.sockets.delete(socket));
    });
    server.on('tlsClientError', () => undefined);
    server.on('secureConnection', (socket) => self.serve(socket));
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(self)));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** TCP connections still open. */
  get open(): number {
    return this.sockets.size;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: tls.TLSSocket): void {
    this.handshakes += 1;
    if (socket.isSessionReused()) this.resumed += 1;
    const script = this.script;
    socket.on('error', () => undefined);
    socket.write(`${script.greeting}\r\n`);
    if (script.hangUp === 'after-greeting') return this.hangUp(socket, script);
    const hangUpOn = script.hangUp;
    let buffered = '';
    let lastHeard = performance.now();
    if (script.idleHangUpMs !== undefined) {
      socket.setTimeout(script.idleHangUpMs, () => this.hangUp(socket, script));
    }
    socket.on('data', (chunk: Buffer) => {
      const idleMs = performance.now() - lastHeard;
      lastHeard = performance.now();
      if (script.staleAfterMs !== undefined && idleMs > script.staleAfterMs)
        return this.hangUp(socket, script);
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end).replace(/\r$/, '');
        buffered = buffered.slice(end + 1);
        this.received.push(line);
        if (hangUpOn.test(line)) return this.hangUp(socket, script);
        const reply = script.replies?.find(([pattern]) => pattern.test(line))?.[1];
        if (reply !== undefined)
          socket.write(
            reply
              .split('\n')
              .map((text) => `${text}\r\n`)
              .join(''),
          );
      }
    });
  }

  private hangUp(socket: tls.TLSSocket, script: ServerScript): void {
    if (script.how === 'close') {
      socket.end();
      return;
    }
    // The TCP socket under the TLS one: a reset must not be preceded by a TLS close_notify.
    const raw = [...this.sockets].find((candidate) => candidate.remotePort === socket.remotePort);
    (raw ?? socket).resetAndDestroy();
  }
}

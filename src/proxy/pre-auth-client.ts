import tls from 'node:tls';
import type net from 'node:net';
import { farewell } from './farewells.js';
import { LineReader } from './line-reader.js';
import { startLocalTls } from './local-tls.js';
import { isProxyHeaderStart, V2_SIGNATURE } from './proxy-protocol/parse.js';
import type { SessionContext, SessionOutcome } from './session.js';

const CLOSED: SessionOutcome = { kind: 'closed' };

/**
 * How long a client must have kept us waiting before a full proxy sends it away for a newer one.
 * A mail client logs in within milliseconds; a fresh burst of them is refused as before.
 */
const DAWDLING_MS = 5_000;

/** How long a client that was sent away may take to close before it is cut off. */
const HANG_UP_GRACE_MS = 5_000;

/**
 * Conversations still under way, by the socket the client connected with, so the listener can end
 * them from outside (the proxy is stopping) without knowing the protocol's state.
 */
const conversations = new WeakMap<net.Socket, PreAuthClient>();

/** How a local STARTTLS / STLS went. */
export type LocalTlsUpgrade =
  | 'secure'
  /** The client sent more behind the command before the handshake: hang up on it. */
  | 'data-before-handshake'
  /** The handshake failed (logged); the connection is closed. */
  | 'failed';

/**
 * The client's side of a pre-authentication conversation, the same for every protocol: one
 * socket that a local STARTTLS may replace, a line reader on it, the idle clock, and the ways the
 * conversation ends (hang up, or hand over to the splice).
 *
 * The idle clock runs only while we wait for the client, never while the client waits for us
 * (the token, the upstream). It is armed on the socket the client connected with, which sees
 * every byte even under a local STARTTLS, and disarmed after each wait, so nothing of it is left
 * running into the spliced session.
 */
export class PreAuthClient {
  private socket: net.Socket;
  private reader: LineReader;
  private hungUp = false;
  /** Time spent waiting for the client so far, against `limits.loginDeadlineMs`. */
  private waitedMs = 0;
  /** When the current wait for the client began; undefined while the client waits for us. */
  private waitStarted: number | undefined;
  /** Whether the client's first bytes have been looked at (see {@link refusedProxyHeader}). */
  private firstBytesSeen = false;

  constructor(
    private readonly context: SessionContext,
    /** What a client that stays silent too long is told, ready for the wire (CRLF included). */
    private readonly idleFarewell: string,
  ) {
    this.socket = context.client;
    this.reader = new LineReader(this.socket, context.limits.maxLineBytes);
    conversations.set(context.client, this);
  }

  /** The conversation on `socket` (as accepted), until it ends or is handed to the splice. */
  static on(socket: net.Socket): PreAuthClient | undefined {
    return conversations.get(socket);
  }

  /**
   * Ends the conversation from outside, whatever it is waiting for: `lastWords`, then the usual
   * hang-up. A login under way finishes in the background and its upstream is dropped. False when
   * the conversation had already ended.
   */
  sendAway(lastWords: string): boolean {
    if (this.gone()) return false;
    this.hangUp(lastWords);
    return true;
  }

  /**
   * Sends the client away with `lastWords` if we are waiting for it (not while its login is under
   * way) and it has dawdled: how a full proxy makes room for a new connection. False otherwise.
   */
  sendAwayIfDawdling(lastWords: string): boolean {
    if (this.waitStarted === undefined) return false;
    const waited = this.waitedMs + performance.now() - this.waitStarted;
    return waited >= DAWDLING_MS && this.sendAway(lastWords);
  }

  /** True once the connection is encrypted (implicit TLS, or after a local STARTTLS). */
  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  /** A local certificate is configured and the connection is not encrypted yet. */
  get canStartTls(): boolean {
    return this.context.localTls !== undefined && !this.secure;
  }

  /** Writes protocol text, unless the client has gone. */
  send(text: string): void {
    if (this.socket.writable) this.socket.write(text);
  }

  /** The next line, decoded; `null` when the client has gone or was sent away. */
  readLine(): Promise<string | null> {
    return this.read((reader) => reader.readLine());
  }

  /** The next line as bytes; `null` when the client has gone or was sent away. */
  readRawLine(): Promise<Buffer | null> {
    return this.read((reader) => reader.readRawLine());
  }

  /**
   * Any read from the client (an IMAP command with its literals, say), under the idle clock.
   * `null` when the client has gone: a reset is a client leaving, not a failure of ours. What
   * the reader or `read` itself throws (a line too long, a syntax error) is the protocol's to answer.
   */
  async read<T>(read: (reader: LineReader) => Promise<T | null>): Promise<T | null> {
    if (this.hungUp) return null;
    const reader = this.reader;
    try {
      const result = await this.underIdleClock(
        async () => ((await this.refusedProxyHeader(reader)) ? null : read(reader)),
        this.onIdle,
      );
      // The client shut its side after its last command, which has been answered: close ours.
      if (result === null && !this.hungUp) this.hangUp();
      return result;
    } catch (err) {
      // A stream error destroys the socket; errors of the protocol's own making leave it open.
      if (this.socket.destroyed) return null;
      throw err;
    }
  }

  /**
   * Ends the conversation after `lastWords`: stops parsing, reads and drops whatever the client
   * still sends (so its unread bytes do not turn our close into a reset that could swallow the
   * last reply), and cuts off a client that never closes after a grace period.
   */
  hangUp(lastWords?: string): SessionOutcome {
    if (lastWords !== undefined) this.send(lastWords);
    this.hungUp = true;
    this.reader.release();
    const { socket } = this;
    const plain = this.context.client;
    socket.resume();
    socket.end();
    setTimeout(() => {
      socket.destroy();
      plain.destroy();
    }, HANG_UP_GRACE_MS).unref();
    return CLOSED;
  }

  /**
   * The local STARTTLS / STLS upgrade, once the protocol has checked it is offered: refuses a
   * client that pipelined more behind the command (it would be read as if it had come over TLS),
   * sends `goAhead`, and does the handshake under the idle clock.
   */
  async startTls(goAhead: string): Promise<LocalTlsUpgrade> {
    const secureContext = this.context.localTls;
    if (secureContext === undefined || this.secure)
      throw new Error('local STARTTLS needs a certificate and a plain connection');
    if (this.reader.release().length > 0) return 'data-before-handshake';
    // The client already hung up (its FIN came with the command): a handshake would wait forever.
    if (this.gone() || this.socket.readableEnded || !this.socket.writable) {
      this.socket.destroy();
      return 'failed';
    }
    this.send(goAhead);
    const plain = this.socket;
    // A client silent in the middle of a handshake gets no farewell: plain text would be garbage to it.
    const cut = (): void => void plain.destroy();
    const secure = await this.underIdleClock(
      () => startLocalTls(plain, secureContext, this.context.log),
      cut,
      cut,
    );
    if (secure === undefined) return 'failed';
    this.socket = secure;
    this.reader = new LineReader(secure, this.context.limits.maxLineBytes);
    return 'secure';
  }

  /**
   * Hands both sides to the splice after a login upstream as `account`. `closed` (and the upstream
   * dropped) when the client went away while the login was under way: nobody is left to splice with.
   */
  handOver(upstream: net.Socket, upstreamPending: Buffer, account: string): SessionOutcome {
    if (this.gone()) {
      upstream.destroy();
      return CLOSED;
    }
    conversations.delete(this.context.client);
    return {
      kind: 'authenticated',
      client: this.socket,
      clientPending: this.reader.release(),
      upstream,
      upstreamPending,
      account,
    };
  }

  /**
   * Hands both sides to the splice without a login: the client went on regardless and the server
   * answers it for itself. `firstLine` is the client line that did so, which the server must see.
   */
  passThrough(upstream: net.Socket, upstreamPending: Buffer, firstLine: Buffer): SessionOutcome {
    if (this.gone()) {
      upstream.destroy();
      return CLOSED;
    }
    conversations.delete(this.context.client);
    const clientPending = Buffer.concat([firstLine, Buffer.from('\r\n'), this.reader.release()]);
    return {
      kind: 'unauthenticated',
      client: this.socket,
      clientPending,
      upstream,
      upstreamPending,
    };
  }

  /**
   * A PROXY header here came from no trusted balancer (those are read, and their header removed,
   * before the conversation starts): someone claiming to speak for another address. Hang up.
   */
  private async refusedProxyHeader(reader: LineReader): Promise<boolean> {
    if (this.firstBytesSeen) return false;
    this.firstBytesSeen = true;
    if (!isProxyHeaderStart(await reader.peek(V2_SIGNATURE.length))) return false;
    const { log, remoteAddress, server } = this.context;
    // The connection's logger already names the client (`remote`).
    log.warn(
      { event: 'proxy_header_refused' },
      `refused a PROXY protocol header from ${remoteAddress}, which is not a trusted load balancer ` +
        `(add it to proxy_protocol_from in [${server.section}] if it is yours)`,
    );
    this.hangUp();
    return true;
  }

  private gone(): boolean {
    return this.hungUp || this.socket.destroyed;
  }

  private readonly onIdle = (): void => {
    this.context.log.info({ event: 'idle_timeout' }, 'client idle before logging in');
    // Releasing the reader ends the pending read with null, which ends the session.
    this.hangUp(this.idleFarewell);
  };

  private readonly onDeadline = (): void => {
    this.context.log.info({ event: 'login_deadline' }, 'client too slow to log in');
    this.hangUp(farewell(this.context.server.protocol, 'login-deadline', this.context.hostname));
  };

  /**
   * Runs `wait` (for the client) under two clocks: the idle one, which every byte restarts, and
   * what is left of the whole conversation's deadline, which nothing restarts.
   */
  private async underIdleClock<T>(
    wait: () => Promise<T>,
    onIdle: () => void,
    onDeadline: () => void = this.onDeadline,
  ): Promise<T> {
    const plain = this.context.client;
    const left = this.context.limits.loginDeadlineMs - this.waitedMs;
    const started = performance.now();
    const deadline = setTimeout(onDeadline, Math.max(0, left));
    plain.setTimeout(this.context.limits.idleTimeoutMs, onIdle);
    this.waitStarted = started;
    try {
      return await wait();
    } finally {
      this.waitStarted = undefined;
      this.waitedMs += performance.now() - started;
      clearTimeout(deadline);
      // With the listener too: `setTimeout(0)` alone leaves one `timeout` listener behind per call.
      plain.setTimeout(0, onIdle);
    }
  }
}

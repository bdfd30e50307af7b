import type net from 'node:net';
import type { Logger } from 'pino';
import type { Protocol } from '../config/types.js';
import type { PreAuthLimits } from './session.js';
import {
  connectUpstream,
  describeTarget,
  UpstreamError,
  type UpstreamTarget,
  type UpstreamTlsOptions,
} from './upstream.js';
import { UpstreamLines } from './upstream-dialogue.js';

/** An upstream connection ready for the protocol's XOAUTH2 exchange. */
export interface UpstreamConversation {
  readonly socket: net.Socket;
  readonly lines: PrefetchingLines;
  /** How long it had been open when the login took it: an early connection sits idle meanwhile. */
  readonly idleMs: number;
}

/** What an early connection needs to know about its listener. */
export interface EarlyUpstreamOptions {
  readonly protocol: Protocol;
  readonly upstream: UpstreamTarget;
  readonly upstreamTls: UpstreamTlsOptions;
  readonly limits: Pick<PreAuthLimits, 'maxLineBytes' | 'maxEarlyUpstream'>;
  readonly log: Logger;
}

/**
 * An early connection is used only this long after it was opened. Mail clients log in within
 * milliseconds of the greeting; one that took longer (a person typing) gets a fresh connection
 * rather than one the server may have given up on while we did not read from it.
 */
export const EARLY_UPSTREAM_FRESH_MS = 10_000;

/**
 * Upstreams (by `host:port`) whose last connection attempt failed. No early connection is opened
 * to them, so a server that is down costs nothing until someone logs in, as before; the next
 * connection that succeeds takes the server off the list.
 */
const failing = new Set<string>();

/** One early connection, whoever holds it: a client not yet logged in, or the spares. */
interface EarlyConnection {
  readonly key: string;
  readonly conversation: Promise<UpstreamConversation>;
  readonly openedAt: number;
  /** The TLS settings it was opened and verified with: a spare goes only to the same. */
  readonly tls: UpstreamTlsOptions;
  /** Still counted in `openEarly`: neither taken by a login nor closed. */
  open: boolean;
}

/**
 * Early connections open now, per upstream, held by clients or kept as spares. Every client not
 * yet logged in could hold one, but a crowd of slow or hostile clients must not become a crowd of
 * idle connections at the server (`maxEarlyUpstream` bounds them; past it, clients log in as
 * before).
 */
const openEarly = new Map<string, number>();

/**
 * Early connections whose client left without logging in, per upstream, kept for the next client
 * while fresh. Without them every short-lived client cost the server a connection: a password
 * guesser on 40 connections, refused locally within milliseconds each time, made the proxy open
 * about 300 TLS connections a second to Dovecot, which then answered the owner's login late or
 * not at all. A spare carries nothing of its first client: only the handshake and the greeting.
 */
const spares = new Map<string, EarlyConnection[]>();

/**
 * The IMAP or POP3 upstream connection, opened as the client connects instead of when it logs
 * in: the TCP and TLS handshakes and the greeting cross the network while the client reads our
 * greeting and sends its login, so against a distant server a login waits for one exchange
 * (the XOAUTH2 command) instead of four or five round trips.
 *
 * It is speculative, so it is bounded like the client's connection itself: at most
 * `maxEarlyUpstream` per upstream, handed to the next client when its own leaves without logging
 * in, closed once stale, never opened to an upstream that has been failing. A connection the
 * server closed is replaced by a fresh one at the login; other failures are kept for the login,
 * which reports them as it always has.
 */
export class EarlyUpstream {
  private connection: EarlyConnection | undefined;

  private constructor(
    private readonly options: EarlyUpstreamOptions,
    connection: EarlyConnection,
  ) {
    this.connection = connection;
  }

  /** Takes a spare or opens a connection now; undefined where there is none to have early. */
  static start(options: EarlyUpstreamOptions): EarlyUpstream | undefined {
    if (options.protocol === 'SMTP' || options.upstream.security !== 'implicit') return undefined;
    const key = describeTarget(options.upstream);
    if (failing.has(key)) return undefined;
    const spare = spares.get(key)?.find((kept) => kept.tls === options.upstreamTls);
    if (spare !== undefined) {
      removeSpare(spare);
      return new EarlyUpstream(options, spare);
    }
    if ((openEarly.get(key) ?? 0) >= options.limits.maxEarlyUpstream) return undefined;
    options.log.debug({ event: 'upstream_early_connect' }, 'connecting upstream ahead of login');
    return new EarlyUpstream(options, openEarlyConnection(options, key));
  }

  /**
   * Hands the connection to the login (once; later calls get undefined). A stale one is dropped
   * and undefined returned, so that the login opens a new one; one the server has closed (before
   * or during its greeting) is replaced by a new one.
   */
  take(): Promise<UpstreamConversation> | undefined {
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined) return undefined;
    release(connection);
    if (isStale(connection)) {
      drop(connection.conversation);
      return undefined;
    }
    return connection.conversation.then(
      (opened) => {
        opened.socket.ref();
        if (!isUsable(opened.socket)) return openConversation(this.options);
        return { ...opened, idleMs: performance.now() - connection.openedAt };
      },
      (err: unknown) => {
        if (err instanceof UpstreamError && err.kind === 'closed')
          return openConversation(this.options);
        throw err;
      },
    );
  }

  /** The client left without logging in: its connection becomes a spare while it is fresh. */
  close(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined || !connection.open) return;
    const freshFor = connection.openedAt + EARLY_UPSTREAM_FRESH_MS - performance.now();
    if (freshFor <= 0) return drop(connection.conversation);
    const kept = spares.get(connection.key) ?? [];
    kept.push(connection);
    spares.set(connection.key, kept);
    setTimeout(() => {
      if (removeSpare(connection)) drop(connection.conversation);
    }, freshFor).unref();
  }
}

/** Opens an early connection, counted until a login takes it or it closes. */
function openEarlyConnection(options: EarlyUpstreamOptions, key: string): EarlyConnection {
  openEarly.set(key, (openEarly.get(key) ?? 0) + 1);
  const conversation = openConversation(options).then(async (opened) => {
    // The greeting is read now too; the exchange gets it as its first line at login.
    try {
      await opened.lines.prefetch();
    } catch (err) {
      opened.socket.destroy();
      failing.add(opened.lines.target);
      throw err;
    }
    return opened;
  });
  const connection: EarlyConnection = {
    key,
    conversation,
    openedAt: performance.now(),
    tls: options.upstreamTls,
    open: true,
  };
  conversation.then(
    ({ socket }) => {
      // Until a login takes it, it does not keep the daemon running: shutdown waits for no spare.
      socket.unref();
      socket.once('close', () => release(connection));
    },
    () => release(connection),
  );
  return connection;
}

/** No longer counted: taken by a login, or closed. */
function release(connection: EarlyConnection): void {
  removeSpare(connection);
  if (!connection.open) return;
  connection.open = false;
  const open = (openEarly.get(connection.key) ?? 1) - 1;
  if (open > 0) openEarly.set(connection.key, open);
  else openEarly.delete(connection.key);
}

function removeSpare(connection: EarlyConnection): boolean {
  const kept = spares.get(connection.key);
  const index = kept?.indexOf(connection) ?? -1;
  if (kept === undefined || index < 0) return false;
  kept.splice(index, 1);
  if (kept.length === 0) spares.delete(connection.key);
  return true;
}

function isStale(connection: EarlyConnection): boolean {
  return performance.now() - connection.openedAt > EARLY_UPSTREAM_FRESH_MS;
}

/** Not closed, and the server has not said it is closing (its FIN may not have closed it yet). */
function isUsable(socket: net.Socket): boolean {
  return !socket.destroyed && !socket.readableEnded;
}

/** The upstream connection for a login: the early one when there is one to take, or a new one. */
export function upstreamForLogin(
  early: EarlyUpstream | undefined,
  options: Omit<EarlyUpstreamOptions, 'protocol' | 'log'>,
): Promise<UpstreamConversation> {
  return early?.take() ?? openConversation(options);
}

/**
 * An early connection that sat idle this long before its login may have been closed by an idle
 * timer at the server just as the login arrived. One used sooner was not idle: the server closed
 * it in answer to the login, and a second try would only repeat that.
 */
export const EARLY_UPSTREAM_IDLE_RETRY_MS = 2_000;

/**
 * Whether a login's exchange failed because the early connection it used, idle a while, had been
 * closed by the server meanwhile: such a login is tried once more over a new connection.
 */
export function closedWhileIdle(conversation: UpstreamConversation, err: unknown): boolean {
  return (
    conversation.idleMs >= EARLY_UPSTREAM_IDLE_RETRY_MS &&
    err instanceof UpstreamError &&
    err.kind === 'closed'
  );
}

/** Connects and wraps the socket for the line-by-line login; the outcome updates `failing`. */
async function openConversation(
  options: Omit<EarlyUpstreamOptions, 'protocol' | 'log'>,
): Promise<UpstreamConversation> {
  const key = describeTarget(options.upstream);
  let socket: net.Socket;
  try {
    socket = await connectUpstream(options.upstream, options.upstreamTls);
  } catch (err) {
    if (err instanceof UpstreamError) failing.add(key);
    throw err;
  }
  failing.delete(key);
  const lines = new PrefetchingLines(socket, key, {
    maxLineBytes: options.limits.maxLineBytes,
    silenceTimeoutMs: options.upstreamTls.connectTimeoutMs,
  });
  return { socket, lines, idleMs: 0 };
}

function drop(conversation: Promise<UpstreamConversation>): void {
  conversation.then(
    ({ socket }) => socket.destroy(),
    () => undefined,
  );
}

/** Upstream lines whose first one (the greeting) can be read ahead of the login's exchange. */
class PrefetchingLines extends UpstreamLines {
  private first: Promise<string> | undefined;

  /** Starts reading the first line now; the next `next()` returns it. */
  prefetch(): Promise<string> {
    this.first = super.next();
    return this.first;
  }

  override next(): Promise<string> {
    const first = this.first;
    if (first === undefined) return super.next();
    this.first = undefined;
    return first;
  }
}

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

/**
 * Early connections open now, per upstream. Every client not yet logged in could hold one, but a
 * crowd of slow or hostile clients must not become a crowd of idle connections at the server
 * (`maxEarlyUpstream` bounds them; past it, clients log in as before).
 */
const openEarly = new Map<string, number>();

/**
 * The IMAP or POP3 upstream connection, opened as the client connects instead of when it logs
 * in: the TCP and TLS handshakes and the greeting cross the network while the client reads our
 * greeting and sends its login, so against a distant server a login waits for one exchange
 * (the XOAUTH2 command) instead of four or five round trips.
 *
 * It is speculative, so it is bounded like the client's connection itself: one per client not yet
 * logged in (the pre-login limits count those), closed with the client's session unless a login
 * took it, never opened to an upstream that has been failing. Failures are kept for the login,
 * which reports them as it always has.
 */
export class EarlyUpstream {
  private pending: Promise<UpstreamConversation> | undefined;
  private readonly openedAt = performance.now();
  private counted = true;

  private constructor(
    private readonly options: EarlyUpstreamOptions,
    conversation: Promise<UpstreamConversation>,
  ) {
    this.pending = conversation;
    conversation.catch(() => this.uncount());
  }

  private uncount(): void {
    if (!this.counted) return;
    this.counted = false;
    const key = describeTarget(this.options.upstream);
    const open = (openEarly.get(key) ?? 1) - 1;
    if (open > 0) openEarly.set(key, open);
    else openEarly.delete(key);
  }

  /** Opens the connection now, or returns undefined where there is none to open early. */
  static start(options: EarlyUpstreamOptions): EarlyUpstream | undefined {
    if (options.protocol === 'SMTP' || options.upstream.security !== 'implicit') return undefined;
    const key = describeTarget(options.upstream);
    if (failing.has(key)) return undefined;
    if ((openEarly.get(key) ?? 0) >= options.limits.maxEarlyUpstream) return undefined;
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
    options.log.debug({ event: 'upstream_early_connect' }, 'connecting upstream ahead of login');
    return new EarlyUpstream(options, conversation);
  }

  /**
   * Hands the connection to the login (once; later calls get undefined). A connection past its
   * freshness, or one that has closed meanwhile, is dropped and undefined returned, so that the
   * login opens a new one.
   */
  take(): Promise<UpstreamConversation> | undefined {
    const conversation = this.pending;
    this.pending = undefined;
    this.uncount();
    if (conversation === undefined) return undefined;
    if (performance.now() - this.openedAt > EARLY_UPSTREAM_FRESH_MS) {
      drop(conversation);
      return undefined;
    }
    return conversation.then((opened) =>
      opened.socket.destroyed ? openConversation(this.options) : opened,
    );
  }

  /** Closes the connection unless a login took it: the client left before logging in. */
  close(): void {
    this.uncount();
    if (this.pending === undefined) return;
    drop(this.pending);
    this.pending = undefined;
  }
}

/** The upstream connection for a login: the early one when there is one to take, or a new one. */
export function upstreamForLogin(
  early: EarlyUpstream | undefined,
  options: Omit<EarlyUpstreamOptions, 'protocol' | 'log'>,
): Promise<UpstreamConversation> {
  return early?.take() ?? openConversation(options);
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
  return { socket, lines };
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

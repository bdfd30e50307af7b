/**
 * A dedicated PostgreSQL connection that LISTENs on one channel and hands each notification's
 * payload to subscribers. When the connection is lost it reconnects with backoff (1 s doubling to
 * 30 s) and says so in the log; `onReconnect` runs after each reconnection, since notifications
 * sent meanwhile were lost.
 */

import pg from 'pg';
import type { Logger } from 'pino';

const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 30_000;

export class ChangeFeed {
  /** Why the feed is down, or undefined while it listens. */
  problem: string | undefined = 'not connected yet';
  onReconnect: () => void = () => undefined;
  private readonly subscribers = new Set<(payload: string) => void>();
  private client: pg.Client | undefined;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly location: string,
    private readonly log?: Logger,
  ) {}

  /** The first connection; its failure is the caller's start-up error. */
  async start(): Promise<void> {
    await this.connect();
  }

  subscribe(subscriber: (payload: string) => void): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  /** Hands a payload to every subscriber, as if it had been notified. */
  deliver(payload: string): void {
    for (const subscriber of this.subscribers) subscriber(payload);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('connection closed')));
    client.on('notification', (message) => {
      if (message.channel === this.channel && message.payload !== undefined)
        this.deliver(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.problem = undefined;
    this.retryMs = FIRST_RETRY_MS;
  }

  private lost(client: pg.Client, error: Error): void {
    if (client !== this.client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    this.problem = `change feed lost: ${error.message}`;
    this.log?.warn(
      {
        event: 'token_store_feed_lost',
        store: this.location,
        retryMs: this.retryMs,
        err: error.message,
      },
      `lost the PostgreSQL change feed (${error.message}); reconnecting in ${this.retryMs / 1000} s`,
    );
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.retry(), this.retryMs);
    this.timer.unref();
  }

  private async retry(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.connect();
    } catch (error) {
      this.problem = `change feed down: ${(error as Error).message}`;
      this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
      this.log?.warn(
        { event: 'token_store_reconnect_failed', store: this.location, retryMs: this.retryMs },
        `PostgreSQL still unreachable (${(error as Error).message}); next try in ${this.retryMs / 1000} s`,
      );
      this.schedule();
      return;
    }
    this.log?.info(
      { event: 'token_store_reconnected', store: this.location },
      'PostgreSQL change feed reconnected',
    );
    this.onReconnect();
  }
}

/**
 * The Prometheus metrics of one instance (prom-client, a registry of its own). Everything is fed
 * by what the daemon already has: the authenticator's answers, token events, accepted sockets, and
 * at scrape time the accounts' status and the store's health. Nothing here touches the
 * pass-through: bytes are read off each socket's own counters, when scraped and when it closes.
 */
import type net from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Protocol } from '../config/types.js';
import type { AccountStatus } from '../control/protocol.js';
import type { StoreHealth } from '../tokens/stores/postgres-store.js';
import type { TokenEvent } from '../tokens/token-manager.js';

const PREFIX = 'oauth2_mail_proxy_';

/**
 * Microsoft drops a refresh token left unused for 90 days (Google after six months); the proxy
 * learns no expiry for it, so this is counted from its last use.
 */
export const REFRESH_TOKEN_IDLE_LIFETIME_SECONDS = 90 * 24 * 60 * 60;

export interface MetricSources {
  /** Every account's state, as `status` shows it. */
  readonly accounts: () => Promise<readonly AccountStatus[]>;
  readonly storeHealth: () => StoreHealth;
}

interface OpenConnection {
  readonly protocol: Protocol;
  /** Bytes already counted, from the client and to it. */
  counted: { fromClient: number; toClient: number };
}

export class Metrics {
  readonly registry = new Registry();
  private readonly open = new Map<net.Socket, OpenConnection>();
  private readonly logins: Counter<'protocol' | 'outcome'>;
  private readonly refreshes: Counter<'outcome'>;
  private readonly obtained: Counter;
  private readonly bytes: Counter<'protocol' | 'direction'>;

  constructor(private readonly sources: MetricSources) {
    const registers = [this.registry];
    const open = this.open;
    // prom-client's default process metrics are left out: `promtool check metrics` objects to
    // three of their names, and the service manager already watches the process.
    this.logins = new Counter({
      name: `${PREFIX}logins_total`,
      help: 'Local logins answered, by protocol and outcome (success, or why it was refused).',
      labelNames: ['protocol', 'outcome'],
      registers,
    });
    this.refreshes = new Counter({
      name: `${PREFIX}token_refreshes_total`,
      help: 'Access token refreshes at the identity provider, by outcome (success, or the failure kind).',
      labelNames: ['outcome'],
      registers,
    });
    this.obtained = new Counter({
      name: `${PREFIX}tokens_obtained_total`,
      help: 'New token sets from an authorisation or a grant without sign-in.',
      registers,
    });
    this.bytes = new Counter({
      name: `${PREFIX}relayed_bytes_total`,
      help: 'Bytes between clients and the proxy, by protocol and direction (from_client, to_client).',
      labelNames: ['protocol', 'direction'],
      registers,
      collect: () => {
        for (const [socket, connection] of this.open) this.countBytes(socket, connection);
      },
    });
    new Gauge({
      name: `${PREFIX}open_connections`,
      help: 'Client connections open now, before or after their login, by protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        const counts: Record<Protocol, number> = { IMAP: 0, POP: 0, SMTP: 0 };
        for (const { protocol } of open.values()) counts[protocol] += 1;
        for (const [protocol, count] of Object.entries(counts)) this.set({ protocol }, count);
      },
    });
    this.accountGauges(registers);
    new Gauge({
      name: `${PREFIX}token_store_up`,
      help: 'Whether the token store answers (1) or not (0: logins needing a write fail as temporary).',
      registers,
      collect() {
        this.set(sources.storeHealth().up ? 1 : 0);
      },
    });
  }

  /** A local login's answer: `success`, or the refusal's reason. */
  login(protocol: Protocol, outcome: string): void {
    this.logins.inc({ protocol, outcome });
  }

  tokenEvent(event: TokenEvent): void {
    if (event.type === 'token_refreshed') this.refreshes.inc({ outcome: 'success' });
    if (event.type === 'refresh_failed') this.refreshes.inc({ outcome: event.kind });
    if (event.type === 'token_obtained') this.obtained.inc();
  }

  /** Counts `socket` while it is open, and its bytes until it closes. */
  connection(socket: net.Socket, protocol: Protocol): void {
    const connection: OpenConnection = { protocol, counted: { fromClient: 0, toClient: 0 } };
    this.open.set(socket, connection);
    socket.once('close', () => {
      this.countBytes(socket, connection);
      this.open.delete(socket);
    });
  }

  private countBytes(socket: net.Socket, connection: OpenConnection): void {
    const { protocol, counted } = connection;
    const fromClient = socket.bytesRead - counted.fromClient;
    const toClient = socket.bytesWritten - counted.toClient;
    if (fromClient > 0) this.bytes.inc({ protocol, direction: 'from_client' }, fromClient);
    if (toClient > 0) this.bytes.inc({ protocol, direction: 'to_client' }, toClient);
    connection.counted = { fromClient: socket.bytesRead, toClient: socket.bytesWritten };
  }

  /** Per account, at scrape time: how long its tokens last, and who waits for a sign-in. */
  private accountGauges(registers: Registry[]): void {
    // One status read per scrape, shared by the three gauges (each collects on its own).
    let reading: Promise<readonly AccountStatus[]> | undefined;
    const accounts = (): Promise<readonly AccountStatus[]> => {
      reading ??= this.sources.accounts().finally(() => setImmediate(() => (reading = undefined)));
      return reading;
    };
    const now = (): number => Date.now() / 1000;
    new Gauge({
      name: `${PREFIX}access_token_expiry_seconds`,
      help: 'Seconds until the stored access token of the account expires (negative: expired).',
      labelNames: ['account'],
      registers,
      async collect() {
        this.reset();
        for (const account of await accounts())
          if (account.accessTokenExpiry !== undefined)
            this.set({ account: account.account }, account.accessTokenExpiry - now());
      },
    });
    new Gauge({
      name: `${PREFIX}refresh_token_expiry_seconds`,
      help: 'Seconds until the refresh token of the account lapses unused (estimated: 90 days after its last use).',
      labelNames: ['account'],
      registers,
      async collect() {
        this.reset();
        for (const account of await accounts())
          if (account.hasRefreshToken && account.lastActivity !== undefined)
            this.set(
              { account: account.account },
              account.lastActivity + REFRESH_TOKEN_IDLE_LIFETIME_SECONDS - now(),
            );
      },
    });
    new Gauge({
      name: `${PREFIX}accounts_awaiting_authorization`,
      help: 'Accounts with a sign-in started and not finished.',
      registers,
      async collect() {
        this.set((await accounts()).filter((account) => account.pending !== undefined).length);
      },
    });
  }
}

/**
 * The token store on PostgreSQL, for several instances sharing one set of tokens. Rows hold exactly
 * the fields of an INI store's section, encrypted with the mail client's password as there; the
 * database never holds a usable token on its own.
 *
 * - `update` runs in a transaction holding the account's advisory lock, so a refresh by one
 *   instance waits for another's and then sees its result.
 * - Every change NOTIFYs {@link CHANGE_CHANNEL}; a dedicated connection LISTENs and tells
 *   `onChange` listeners about other instances' writes (and, after it reconnects, about every
 *   account, since notifications sent while it was away are lost).
 * - With the database down every call rejects with {@link TokenStoreUnavailableError} (a temporary
 *   failure for the caller); the pool connects again on the next call, the listener with backoff.
 */

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { STORED_TOKEN_FIELDS, type StoredTokenFields } from '../../config/types.js';
import { isUnavailable, setupError, storeError } from './postgres-errors.js';
import { ChangeFeed } from './postgres-change-feed.js';
import { CHANGE_CHANNEL, LOCK_SPACE, migrate, TOKENS_TABLE } from './postgres-schema.js';
import { TokenStoreUnavailableError } from './store-errors.js';
import type { AccountChange, TokenStore } from './token-store.js';
import type { Decide } from './decide.js';

/** Whether a `--cache-store` value names a PostgreSQL store rather than a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** The URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

/** Up or down, for `status`, metrics and `/healthz`. */
export interface StoreHealth {
  readonly up: boolean;
  /** Why it is down (no secrets). */
  readonly problem?: string;
}

export interface PostgresStoreOptions {
  readonly log?: Logger;
  /** Connections per instance; a refresh holds one while it waits for the provider. */
  readonly maxConnections?: number;
  readonly connectTimeoutMs?: number;
}

const COLUMNS = STORED_TOKEN_FIELDS;
type Row = { [K in (typeof COLUMNS)[number]]: string | null };

export class PostgresTokenStore implements TokenStore {
  readonly location: string;
  private readonly instance = randomUUID();
  private readonly running = new Set<Promise<unknown>>();
  private problem: string | undefined;

  private constructor(
    url: string,
    private readonly pool: pg.Pool,
    private readonly feed: ChangeFeed,
  ) {
    this.location = redactUrl(url);
  }

  /**
   * Connects, creates or upgrades the schema, and starts listening for other instances' changes.
   *
   * @throws {@link TokenStoreSetupError} naming the setting to fix
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresTokenStore> {
    const location = redactUrl(url);
    const config: pg.PoolConfig = {
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      application_name: 'oauth2-mail-proxy',
    };
    let pool: pg.Pool;
    try {
      pool = new pg.Pool(config);
    } catch (error) {
      throw setupError(location, error);
    }
    // An idle connection dropped by the server is replaced on the next call; without a listener
    // the pool's 'error' event would end the process.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw setupError(location, error);
    }
    const feed = new ChangeFeed(config, CHANGE_CHANNEL, location, options.log);
    const store = new PostgresTokenStore(url, pool, feed);
    feed.onReconnect = () => void store.announceAll();
    try {
      await feed.start();
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw setupError(location, error);
    }
    return store;
  }

  read(account: string): Promise<StoredTokenFields | undefined> {
    return this.track(async () => {
      const result = await this.pool.query<Row>(
        `SELECT ${COLUMNS.join(', ')} FROM ${TOKENS_TABLE} WHERE account = $1`,
        [account],
      );
      return result.rows[0] && fieldsOf(result.rows[0]);
    });
  }

  write(account: string, fields: StoredTokenFields): Promise<void> {
    return this.update(account, () =>
      Promise.resolve({ change: { kind: 'write', fields } as const, result: undefined }),
    );
  }

  remove(account: string, fieldNames?: readonly (keyof StoredTokenFields)[]): Promise<void> {
    return this.update(account, (current) => {
      if (current === undefined)
        return Promise.resolve({ change: { kind: 'keep' }, result: undefined });
      if (fieldNames === undefined)
        return Promise.resolve({ change: { kind: 'remove' }, result: undefined });
      const kept: StoredTokenFields = { ...current };
      for (const name of fieldNames) delete kept[name];
      const change: AccountChange =
        Object.keys(kept).length === 0 ? { kind: 'remove' } : { kind: 'write', fields: kept };
      return Promise.resolve({ change, result: undefined });
    });
  }

  update<T>(account: string, decide: Decide<T>): Promise<T> {
    return this.track(async () => {
      const client = await this.pool.connect();
      // The pool only watches idle connections; one lost while checked out must not end the process.
      const ignore = (): undefined => undefined;
      client.on('error', ignore);
      let broken: unknown;
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
          LOCK_SPACE + 1,
          account,
        ]);
        const found = await client.query<Row>(
          `SELECT ${COLUMNS.join(', ')} FROM ${TOKENS_TABLE} WHERE account = $1`,
          [account],
        );
        let decision: { readonly change: AccountChange; readonly result: T };
        try {
          decision = await decide(found.rows[0] && fieldsOf(found.rows[0]));
        } catch (error) {
          await client.query('ROLLBACK');
          throw new DecideError(error);
        }
        try {
          await this.apply(client, account, decision.change);
          await client.query('COMMIT');
        } catch (error) {
          if (decision.change.kind !== 'keep' && isUnavailable(error)) {
            throw new TokenStoreUnavailableError(
              this.location,
              `PostgreSQL went away before the change for ${account} was saved (${(error as Error).message})`,
              error,
              decision.change,
            );
          }
          throw error;
        }
        return decision.result;
      } catch (error) {
        if (!(error instanceof DecideError)) {
          broken = error;
          await client.query('ROLLBACK').catch(() => undefined);
        }
        throw error;
      } finally {
        client.off('error', ignore);
        // A connection that failed mid-transaction is discarded, not reused.
        client.release(broken instanceof Error && isUnavailable(broken) ? broken : undefined);
      }
    });
  }

  accounts(): Promise<string[]> {
    return this.track(async () => {
      const result = await this.pool.query<{ account: string }>(
        `SELECT account FROM ${TOKENS_TABLE} ORDER BY account`,
      );
      return result.rows.map((row) => row.account);
    });
  }

  onChange(listener: (account: string) => void): () => void {
    return this.feed.subscribe((payload) => {
      const note = parseNote(payload);
      if (note && note.instance !== this.instance) listener(note.account);
    });
  }

  /** Up when the last call reached the database and the change feed is connected. */
  health(): StoreHealth {
    const problem = this.problem ?? this.feed.problem;
    return problem === undefined ? { up: true } : { up: false, problem };
  }

  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async close(): Promise<void> {
    await this.idle();
    await this.feed.stop();
    await this.pool.end().catch(() => undefined);
  }

  private async apply(
    client: pg.PoolClient,
    account: string,
    change: AccountChange,
  ): Promise<void> {
    if (change.kind === 'keep') return;
    if (change.kind === 'remove') {
      await client.query(`DELETE FROM ${TOKENS_TABLE} WHERE account = $1`, [account]);
    } else {
      const values = COLUMNS.map((name) => change.fields[name] ?? null);
      const placeholders = COLUMNS.map((_, index) => `$${index + 2}`).join(', ');
      const updates = COLUMNS.map((name) => `${name} = EXCLUDED.${name}`).join(', ');
      await client.query(
        `INSERT INTO ${TOKENS_TABLE} (account, ${COLUMNS.join(', ')}) VALUES ($1, ${placeholders})
         ON CONFLICT (account) DO UPDATE SET ${updates}, updated_at = now()`,
        [account, ...values],
      );
    }
    // Delivered to listeners when the transaction commits, never for a rolled-back one.
    await client.query('SELECT pg_notify($1, $2)', [
      CHANGE_CHANNEL,
      JSON.stringify({ account, instance: this.instance }),
    ]);
  }

  /** After the change feed was away: every account may have changed meanwhile. */
  private async announceAll(): Promise<void> {
    const accounts = await this.accounts().catch(() => [] as string[]);
    for (const account of accounts)
      this.feed.deliver(JSON.stringify({ account, instance: 'reconnect' }));
  }

  /** Runs one call: counted for `idle`, its failure mapped to a store error and noted for `health`. */
  private track<T>(call: () => Promise<T>): Promise<T> {
    const run = call().then(
      (value) => {
        this.problem = undefined;
        return value;
      },
      (error: unknown) => {
        const cause = error instanceof DecideError ? error.cause : error;
        if (error instanceof DecideError) throw cause;
        const mapped = storeError(this.location, cause);
        if (mapped instanceof TokenStoreUnavailableError) this.problem = mapped.message;
        throw mapped;
      },
    );
    this.running.add(run);
    void run.catch(() => undefined).finally(() => this.running.delete(run));
    return run;
  }
}

/** Wraps what `decide` threw, so it reaches the caller unchanged and is not taken for a DB error. */
class DecideError extends Error {
  constructor(override readonly cause: unknown) {
    super('decide failed');
  }
}

function fieldsOf(row: Row): StoredTokenFields {
  const fields: StoredTokenFields = {};
  for (const name of COLUMNS) {
    const value = row[name];
    if (value !== null) fields[name] = value;
  }
  return fields;
}

function parseNote(payload: string): { account: string; instance: string } | undefined {
  try {
    const note = JSON.parse(payload) as { account?: unknown; instance?: unknown };
    return typeof note.account === 'string' && typeof note.instance === 'string'
      ? { account: note.account, instance: note.instance }
      : undefined;
  } catch {
    return undefined;
  }
}

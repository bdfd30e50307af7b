/**
 * The PostgreSQL token store against a real throwaway cluster: what the fleet relies on
 * (serialised updates, change notifications, concurrent start-up, surviving a database restart).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresTokenStore } from '../../src/tokens/stores/postgres-store.js';
import {
  TokenStoreSetupError,
  TokenStoreUnavailableError,
} from '../../src/tokens/stores/store-errors.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';

let pg: Postgres;
const opened: PostgresTokenStore[] = [];

async function open(url = pg.url): Promise<PostgresTokenStore> {
  const store = await PostgresTokenStore.open(url);
  opened.push(store);
  return store;
}

async function eventually<T>(probe: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

beforeAll(async () => {
  pg = await startPostgres();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
});
afterAll(async () => {
  await pg?.stop();
});

const FIELDS = {
  access_token: 'gAAAAAB-encrypted-access',
  access_token_expiry: '1767225600',
  refresh_token: 'gAAAAAB-encrypted-refresh',
  token_salt: 'c2FsdA==',
  token_iterations: '1200000',
  last_activity: '1767220000',
};

describe('PostgreSQL token store', () => {
  it('reads, writes, removes fields and lists accounts, keeping only what was given', async () => {
    const store = await open();
    expect(await store.read('a@example.com')).toBeUndefined();
    await store.write('a@example.com', FIELDS);
    await store.write('b@example.com', { ...FIELDS, refresh_token: 'other' });
    expect(await store.read('a@example.com')).toEqual(FIELDS);
    expect(await store.accounts()).toEqual(['a@example.com', 'b@example.com']);

    await store.remove('a@example.com', ['access_token', 'access_token_expiry']);
    const { access_token: _a, access_token_expiry: _e, ...rest } = FIELDS;
    expect(await store.read('a@example.com')).toEqual(rest);
    await store.remove('b@example.com');
    expect(await store.accounts()).toEqual(['a@example.com']);
    // The row holds the encrypted fields as given: nothing else is stored.
    expect(
      await pg.sql(
        "SELECT refresh_token FROM oauth2_mail_proxy_tokens WHERE account = 'a@example.com'",
      ),
    ).toBe(FIELDS.refresh_token);
    await store.remove('a@example.com');
  });

  it('serialises updates from two instances: one refreshes, the other sees its result', async () => {
    const [one, two] = await Promise.all([open(), open()]);
    await one.write('race@example.com', { ...FIELDS, access_token: 'expired' });
    let refreshes = 0;
    const refreshUnlessDone = (store: PostgresTokenStore) =>
      store.update('race@example.com', async (current) => {
        if (current?.access_token !== 'expired')
          return { change: { kind: 'keep' } as const, result: current?.refresh_token };
        refreshes += 1;
        await sleep(300); // the identity provider's round trip
        const fields = { ...current, access_token: 'fresh', refresh_token: 'rotated' };
        return { change: { kind: 'write', fields } as const, result: fields.refresh_token };
      });
    const results = await Promise.all([refreshUnlessDone(one), refreshUnlessDone(two)]);
    expect(refreshes).toBe(1);
    expect(results).toEqual(['rotated', 'rotated']);
    expect((await two.read('race@example.com'))?.access_token).toBe('fresh');
  });

  it('tells other instances about a change, not the one that made it', async () => {
    const [writer, reader] = await Promise.all([open(), open()]);
    const heardByReader: string[] = [];
    const heardByWriter: string[] = [];
    reader.onChange((account) => heardByReader.push(account));
    writer.onChange((account) => heardByWriter.push(account));
    await writer.write('notify@example.com', FIELDS);
    await eventually(() => Promise.resolve(expect(heardByReader).toEqual(['notify@example.com'])));
    await sleep(200);
    expect(heardByWriter).toEqual([]);
  });

  it('lets several instances create the schema at once', async () => {
    await pg.sql('CREATE DATABASE fresh');
    const url = pg.url.replace(/\/tokens$/, '/fresh');
    const stores = await Promise.all([open(url), open(url), open(url)]);
    await stores[0]!.write('x@example.com', FIELDS);
    expect(await stores[2]!.read('x@example.com')).toEqual(FIELDS);
    expect(await stores[1]!.accounts()).toEqual(['x@example.com']);
    expect(await pg.sql('SELECT version FROM oauth2_mail_proxy_schema', 'fresh')).toBe('1');
  });

  it('rejects as unavailable while the database is down, then recovers by itself', async () => {
    const [store, other] = await Promise.all([open(), open()]);
    await store.write('down@example.com', FIELDS);
    const heard: string[] = [];
    store.onChange((account) => heard.push(account));
    expect(store.health()).toEqual({ up: true });

    await pg.halt();
    await expect(store.read('down@example.com')).rejects.toBeInstanceOf(TokenStoreUnavailableError);
    await expect(store.write('down@example.com', FIELDS)).rejects.toThrow(/unreachable/);
    expect(store.health().up).toBe(false);

    await pg.resume();
    expect(await eventually(() => store.read('down@example.com'))).toEqual(FIELDS);
    // The change feed comes back too: another instance's write is heard again.
    await eventually(async () => {
      expect(store.health()).toEqual({ up: true });
      heard.length = 0;
      await other.write('down@example.com', { ...FIELDS, access_token: 'after' });
      await sleep(100);
      expect(heard).toContain('down@example.com');
    });
  });

  it('gives the decision back when the database goes away before it is saved', async () => {
    const store = await open();
    const saving = store.update('lost@example.com', async () => {
      await pg.halt();
      return { change: { kind: 'write', fields: FIELDS } as const, result: 'done' };
    });
    const error = (await saving.catch((e: unknown) => e)) as TokenStoreUnavailableError;
    expect(error).toBeInstanceOf(TokenStoreUnavailableError);
    expect(error.unsaved).toEqual({ kind: 'write', fields: FIELDS });
    await pg.resume();
  });

  it('names the setting at start-up: unreachable server, missing rights', async () => {
    await expect(
      PostgresTokenStore.open('postgresql://postgres@127.0.0.1:1/tokens'),
    ).rejects.toThrow(
      /--cache-store.*postgresql:\/\/postgres@127\.0\.0\.1:1\/tokens: PostgreSQL cannot be reached/,
    );
    await pg.sql("CREATE ROLE weak LOGIN PASSWORD 'pw'");
    await pg.sql('CREATE DATABASE locked OWNER postgres');
    const error = await PostgresTokenStore.open(
      `postgresql://weak:pw@127.0.0.1:${pg.port}/locked`,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenStoreSetupError);
    expect((error as Error).message).toMatch(/lacks rights/);
    expect((error as Error).message).not.toContain('pw@');
  });
});

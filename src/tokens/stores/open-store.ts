/**
 * Picks the token store `--cache-store` names: a `postgresql://` URL opens the PostgreSQL store
 * (schema created or upgraded, change feed started), anything else is an INI file path.
 */

import type { Logger } from 'pino';
import { FileTokenStore } from './file-store.js';
import { isPostgresUrl, PostgresTokenStore, type StoreHealth } from './postgres-store.js';
import type { TokenStore } from './token-store.js';

/** A store, and how healthy it is (a file store is always up: its failures are per call). */
export type OpenedStore = TokenStore & { health(): StoreHealth };

/** @throws {@link TokenStoreSetupError} when a PostgreSQL store cannot be used */
export async function openTokenStore(location: string, log?: Logger): Promise<OpenedStore> {
  if (isPostgresUrl(location))
    return PostgresTokenStore.open(location, log === undefined ? {} : { log });
  const file = new FileTokenStore(location);
  return Object.assign(file, { health: (): StoreHealth => ({ up: true }) });
}

import { isPostgresUrl, redactUrl } from '../tokens/stores/postgres-store.js';
import { openTokenStore, type OpenedStore } from '../tokens/stores/open-store.js';
import { TokenStoreSetupError } from '../tokens/stores/store-errors.js';
import type { CheckResult } from './report.js';

/**
 * Opens the token store `check` reads, and says how that went: for a PostgreSQL store, that the
 * server answered, the schema is there (created or upgraded if need be) and the role may use it.
 */
export async function openStoreForCheck(
  location: string,
): Promise<{ store?: OpenedStore; result?: CheckResult }> {
  const shown = isPostgresUrl(location) ? redactUrl(location) : location;
  try {
    const store = await openTokenStore(location);
    const health = store.health();
    if (!health.up)
      return {
        store,
        result: { status: 'fail', title: `Token store ${shown}: ${health.problem ?? 'down'}` },
      };
    // A file store's problems (missing, unreadable, corrupt) are the token check's to explain.
    if (!isPostgresUrl(location)) return { store };
    return {
      store,
      result: {
        status: 'pass',
        title: `Token store ${shown}: PostgreSQL answers, schema ready, rights to read and write`,
      },
    };
  } catch (err) {
    if (!(err instanceof TokenStoreSetupError)) throw err;
    return {
      result: {
        status: 'fail',
        title: `Token store ${shown} cannot be used`,
        details: [err.message],
      },
    };
  }
}

/**
 * Errors of remote token stores. Both extend the file store's {@link TokenStoreError}, so code that
 * already treats a store failure as "try again later" does so for a database too.
 */

import { TokenStoreError } from './file-store.js';
import type { AccountChange } from './token-store.js';

/**
 * The store cannot be reached right now (database down, connection lost). Callers answer the
 * protocol's temporary failure; the store reconnects by itself.
 */
export class TokenStoreUnavailableError extends TokenStoreError {
  constructor(
    location: string,
    problem: string,
    cause?: unknown,
    /**
     * What an `update`'s decision wanted to store when the connection was lost after it was made
     * (for example a refresh token the provider has just rotated). The caller keeps it in memory
     * and writes it again later, so it is never lost.
     */
    readonly unsaved?: AccountChange,
  ) {
    super(location, problem, cause);
  }
}

/**
 * The store cannot be used at start-up: a wrong URL, refused login, missing rights or refused TLS.
 * The message names the setting to fix.
 */
export class TokenStoreSetupError extends Error {
  override readonly name = 'TokenStoreSetupError';
  readonly code = 'ERR_TOKEN_STORE_SETUP';
}

import type { StoredTokenFields } from '../../config/types.js';
import type { AccountChange } from './token-store.js';

/** The callback of `TokenStore.update`, named once for the stores that implement it. */
export type Decide<T> = (
  current: StoredTokenFields | undefined,
) => Promise<{ readonly change: AccountChange; readonly result: T }>;

/**
 * The boundary between the token state machine and where encrypted token fields are kept. The
 * state machine never knows which store it talks to: "lock the account, re-read, refresh only if
 * still needed, write, tell the others" is the same sequence for the INI file (a lock file) and for
 * PostgreSQL (a row lock and NOTIFY).
 *
 * A store only ever holds fields as they are stored: encrypted with the mail client's password.
 * It never sees a password or a usable token.
 */

import type { StoredTokenFields } from '../../config/types.js';

/** What an {@link TokenStore.update} decides for the account once it has seen the stored fields. */
export type AccountChange =
  /** Replace the account's token fields with these (absent fields are removed). */
  | { readonly kind: 'write'; readonly fields: StoredTokenFields }
  /** Remove the account's token fields. */
  | { readonly kind: 'remove' }
  /** Leave the store as it is (someone else already did the work). */
  | { readonly kind: 'keep' };

export interface TokenStore {
  /** Where the store is, safe to log and to show a user (never a password). */
  readonly location: string;

  /** The account's token fields, or undefined when it has none. */
  read(account: string): Promise<StoredTokenFields | undefined>;

  /** Replaces the account's token fields atomically; other accounts are never touched. */
  write(account: string, fields: StoredTokenFields): Promise<void>;

  /** Removes the named token fields of the account, or all of them. */
  remove(account: string, fieldNames?: readonly (keyof StoredTokenFields)[]): Promise<void>;

  /**
   * Holds the account's lock against every other writer (this process, other processes, other
   * instances) while `decide` looks at the fields as stored now and, for example, refreshes; then
   * applies its change before the lock is released. Returns what `decide` returned as `result`.
   */
  update<T>(
    account: string,
    decide: (
      current: StoredTokenFields | undefined,
    ) => Promise<{ readonly change: AccountChange; readonly result: T }>,
  ): Promise<T>;

  /** Every account that has token fields in the store (for `tokens copy`). */
  accounts(): Promise<string[]>;

  /**
   * Calls `listener` with the account whenever another process or instance changed its fields.
   * Returns the function that stops listening. A store that cannot tell never calls it.
   */
  onChange(listener: (account: string) => void): () => void;

  /** Resolves once no write of this object is queued or running. Never rejects. */
  idle(): Promise<void>;

  /** Releases connections and watchers. */
  close(): Promise<void>;
}

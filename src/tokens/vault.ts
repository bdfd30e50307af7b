/**
 * The vault: the one place that knows where an account's secrets at rest live. An account's stored
 * fields come from the token store first, then from tokens left in its config section (older setups).
 * The daemon, `check` and `authorize` all read through here so the rule is written once.
 */
import type { StoredTokenFields } from '../config/types.js';
import type { TokenStore } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';

export interface AccountFields {
  fields: StoredTokenFields | undefined;
  /** True when the fields came from the token store, false when from the config section. */
  fromStore: boolean;
}

/** Reads an account's stored fields: the token store first, then the config section. Store errors propagate. */
export async function readFields(store: TokenStore, subject: TokenSubject): Promise<AccountFields> {
  const stored = await store.read(subject.key);
  if (stored) return { fields: stored, fromStore: true };
  return { fields: subject.account.tokensInConfig, fromStore: false };
}

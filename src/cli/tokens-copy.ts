/**
 * `tokens copy --from STORE --to STORE`: moves the encrypted token fields of every account from one
 * store to another (INI file ⇄ PostgreSQL). Nothing is decrypted: the fields are copied as stored,
 * so the target needs the same mail passwords as the source. Accounts already identical in the
 * target are left alone, so running it again changes nothing.
 */

import type { StoredTokenFields } from '../config/types.js';
import { TokenStoreError } from '../tokens/stores/file-store.js';
import { openTokenStore } from '../tokens/stores/open-store.js';
import { TokenStoreSetupError } from '../tokens/stores/store-errors.js';
import type { TokenStore } from '../tokens/stores/token-store.js';

export interface CopyOptions {
  readonly from: string;
  readonly to: string;
}

/** Resolves with the exit code: 0 copied, 1 a store failed part-way, 2 a store cannot be opened. */
export async function copyTokens(
  options: CopyOptions,
  say: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const opened: TokenStore[] = [];
  try {
    const from = await openTokenStore(options.from);
    opened.push(from);
    const to = await openTokenStore(options.to);
    opened.push(to);
    let copied = 0;
    let unchanged = 0;
    for (const account of await from.accounts()) {
      const fields = await from.read(account);
      if (fields === undefined) continue;
      const wrote = await to.update(account, (current) =>
        Promise.resolve(
          sameFields(current, fields)
            ? { change: { kind: 'keep' } as const, result: false }
            : { change: { kind: 'write', fields } as const, result: true },
        ),
      );
      if (wrote) copied += 1;
      else unchanged += 1;
    }
    say(
      `Copied ${copied} account(s) from ${from.location} to ${to.location}; ${unchanged} already there unchanged.`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TokenStoreSetupError) {
      say(`Could not copy tokens: ${err.message}`);
      return 2;
    }
    if (err instanceof TokenStoreError) {
      say(`Could not copy tokens: ${err.message}. Accounts copied so far are kept; run it again.`);
      return 1;
    }
    throw err;
  } finally {
    await Promise.all(opened.map((store) => store.close()));
  }
}

function sameFields(a: StoredTokenFields | undefined, b: StoredTokenFields): boolean {
  if (a === undefined) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof StoredTokenFields)[]);
  return [...keys].every((key) => a[key] === b[key]);
}

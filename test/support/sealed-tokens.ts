/**
 * Tokens sealed and opened the way the proxy does it, for seeding token stores and reading what
 * the proxy wrote. Goes through the vault itself, so a test seeds exactly what a login would open.
 */
import { randomBytes } from 'node:crypto';
import type { StoredTokenFields } from '../../src/config/types.js';
import { DEFAULT_ITERATIONS, deriveKey } from '../../src/tokens/vault/key-derivation.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import { Vault, type AccountKey, type PlainTokens } from '../../src/tokens/vault/vault.js';

const shared = new Vault();

/**
 * The fields a store holds for these tokens under `password`. With `reuseSaltOf` (fields sealed
 * under the same password), their salt is kept, so a key already derived still opens them.
 */
export async function sealTokens(
  tokens: PlainTokens,
  password: string,
  reuseSaltOf?: StoredTokenFields,
  vault: Vault = shared,
): Promise<StoredTokenFields> {
  const passphrase = new Passphrase(password);
  const opened = reuseSaltOf && (await vault.open(reuseSaltOf, passphrase));
  const key =
    opened?.outcome === 'opened' && opened.key ? opened.key : await vault.newKey(passphrase);
  return vault.seal(key, { tokens });
}

/** The tokens in stored fields, opened with `password`; throws when the password does not open them. */
export async function openTokens(
  fields: StoredTokenFields,
  password: string,
): Promise<PlainTokens> {
  const opened = await shared.open(fields, new Passphrase(password));
  if (opened.outcome !== 'opened') throw new Error('the password does not open the stored tokens');
  if (opened.unreadable !== undefined) throw new Error(opened.unreadable);
  return opened.tokens;
}

/** A key as a login would hold it: `password` derived at `iterations` with `salt` (random when absent). */
export async function accountKey(
  password: string,
  iterations = DEFAULT_ITERATIONS,
  salt: Buffer = randomBytes(16),
): Promise<AccountKey> {
  const derived = {
    salt: salt.toString('base64'),
    iterations,
    bytes: await deriveKey(password, salt, iterations),
  };
  return { opens: derived, seals: derived };
}

/** The fields a store holds for these tokens under `key`. */
export function sealWith(key: AccountKey, tokens: PlainTokens): StoredTokenFields {
  return shared.seal(key, { tokens });
}

/** The key `password` opens the stored tokens with; throws when it does not. */
export async function openingKey(fields: StoredTokenFields, password: string): Promise<AccountKey> {
  const opened = await shared.open(fields, new Passphrase(password));
  if (opened.outcome !== 'opened' || !opened.key)
    throw new Error('the password does not open the stored tokens');
  return opened.key;
}

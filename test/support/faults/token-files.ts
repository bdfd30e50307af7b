/**
 * The token store as files on disk, for fault tests: its exact bytes, what it decrypts to, and
 * what else a write may have left beside it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parseIni } from '../../../src/config/configparser.js';
import type { StoredTokenFields } from '../../../src/config/types.js';
import { TOKEN_FIELD_NAMES } from '../../../src/tokens/stores/file-store.js';
import { openTokens } from '../sealed-tokens.js';

/** The store's bytes, or undefined when there is no file. */
export async function storeBytes(path: string): Promise<Buffer | undefined> {
  return readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

/** The account's token fields as the file holds them; throws if the file does not parse. */
export async function storedFields(
  path: string,
  account: string,
): Promise<StoredTokenFields | undefined> {
  const section = parseIni(await readFile(path, 'utf8'), path).get(account);
  if (section === undefined) return undefined;
  const fields: StoredTokenFields = {};
  for (const name of TOKEN_FIELD_NAMES) {
    const value = section.get(name);
    if (value !== undefined) fields[name] = value;
  }
  return fields;
}

/** The account's tokens in clear; throws if the file does not parse or the password does not open them. */
export async function storedTokens(
  path: string,
  account: string,
  password: string,
): Promise<{ accessToken?: string; refreshToken?: string; expiry?: number }> {
  const fields = await storedFields(path, account);
  if (fields === undefined) throw new Error(`${path} has no section for ${account}`);
  const tokens = await openTokens(fields, password);
  return {
    ...(tokens.accessToken !== undefined && { accessToken: tokens.accessToken }),
    ...(tokens.refreshToken !== undefined && { refreshToken: tokens.refreshToken }),
    ...(tokens.accessTokenExpiry !== undefined && { expiry: tokens.accessTokenExpiry }),
  };
}

/** Files a store write leaves beside the store while under way: `.NAME.*.tmp` and `NAME.lock*`. */
export async function writeLeftovers(path: string): Promise<string[]> {
  const name = basename(path);
  const entries = await readdir(dirname(path));
  return entries
    .filter(
      (entry) =>
        (entry.startsWith(`.${name}.`) && entry.endsWith('.tmp')) ||
        entry.startsWith(`${name}.lock`),
    )
    .sort();
}

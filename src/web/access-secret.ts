import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The file beside the token store that holds the page's access key (owner-only, like the store). */
export function accessSecretFile(tokenStore: string): string {
  return join(dirname(tokenStore), 'web-secret');
}

/** The file where the running daemon leaves the page's address, for `oauth2-mail-proxy web-url`. */
export function webUrlFile(tokenStore: string): string {
  return join(dirname(tokenStore), 'web-url');
}

/**
 * Reads the page's access key, creating a random one (256 bits, 0600) on first use. It stays the
 * same across restarts, so a printed address keeps working until the file is deleted. A key others
 * could read is no key: it is replaced, and the file made owner-only.
 */
export async function loadAccessSecret(file: string): Promise<string> {
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    const ownerOnly = ((await stat(file)).mode & 0o077) === 0;
    if (ownerOnly && /^[A-Za-z0-9_-]{32,}$/.test(existing)) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('base64url');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await rm(file, { force: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/** Compares a presented key with the real one in constant time (hashes first: lengths may differ). */
export function sameSecret(presented: string, secret: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(secret));
}

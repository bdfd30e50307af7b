/**
 * The key derivation email-oauth2-proxy uses for its token encryption: PBKDF2-HMAC-SHA256 over the
 * mail client's password (UTF-8), 32 bytes out, used as a Fernet key.
 */

import { pbkdf2 } from 'node:crypto';

/** email-oauth2-proxy's current iteration count (`Cryptographer.ITERATIONS`), used for everything we write. */
export const DEFAULT_ITERATIONS = 1_200_000;

/** The count implied by an absent `token_iterations` (email-oauth2-proxy before it stored the count). */
export const LEGACY_ITERATIONS = 100_000;

/** Length of the derived key: a Fernet key (16 signing bytes, 16 encryption bytes). */
export const DERIVED_KEY_BYTES = 32;

/**
 * Derives a Fernet key from a password. Runs on libuv's threadpool (about 0.4 s at
 * {@link DEFAULT_ITERATIONS}), so the event loop keeps serving other connections meanwhile.
 */
export function deriveKey(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    return Promise.reject(
      new RangeError(`PBKDF2 iterations must be a positive integer, got ${iterations}`),
    );
  }
  return new Promise((resolve, reject) => {
    pbkdf2(
      Buffer.from(password, 'utf8'),
      salt,
      iterations,
      DERIVED_KEY_BYTES,
      'sha256',
      (error, key) => {
        if (error) reject(error);
        else resolve(key);
      },
    );
  });
}

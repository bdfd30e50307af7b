/**
 * Fernet (https://github.com/fernet/spec/blob/master/Spec.md) on node:crypto, byte-compatible with
 * Python's `cryptography.fernet`, which is what email-oauth2-proxy encrypts its tokens with.
 *
 * token = urlsafe-b64(0x80 ‖ u64be(unix seconds) ‖ IV[16] ‖ AES-128-CBC/PKCS7 ciphertext ‖ HMAC-SHA256[32])
 * with key bytes 0-15 signing and bytes 16-31 encrypting.
 */

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

const VERSION = 0x80;
const KEY_BYTES = 32;
const HEADER_BYTES = 1 + 8 + 16;
const HMAC_BYTES = 32;
const BLOCK_BYTES = 16;
const URL_SAFE_BASE64 = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * The token was made with another key. For our tokens that means another password: the HMAC check is
 * the only password check there is.
 */
export class WrongKeyError extends Error {
  override readonly name = 'WrongKeyError';
  constructor() {
    super('Fernet token signature does not match the key (wrong password?)');
  }
}

/** The text is not a Fernet token at all (bad base64, wrong version, truncated, bad padding). */
export class CorruptTokenError extends Error {
  override readonly name = 'CorruptTokenError';
  constructor(reason: string) {
    super(`Not a valid Fernet token: ${reason}`);
  }
}

/**
 * Encrypts `plaintext` (UTF-8) into a Fernet token.
 *
 * @param key - 32 raw key bytes (not the base64 text Python's `Fernet()` takes).
 * @param now - the token's timestamp in unix seconds; defaults to the current time.
 */
export function fernetEncrypt(key: Buffer, plaintext: string, now?: number): string {
  checkKey(key);
  const timestamp = now ?? Math.floor(Date.now() / 1000);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-128-cbc', key.subarray(16, 32), iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);

  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(VERSION, 0);
  header.writeBigUInt64BE(BigInt(Math.floor(timestamp)), 1);
  iv.copy(header, 9);

  const signed = Buffer.concat([header, ciphertext]);
  const mac = createHmac('sha256', key.subarray(0, 16)).update(signed).digest();
  return toUrlSafeBase64(Buffer.concat([signed, mac]));
}

/**
 * Decrypts a Fernet token. The signature is checked (in constant time) before anything is decrypted.
 * Timestamps are not checked: tokens at rest have no time-to-live.
 *
 * @throws {@link CorruptTokenError} if `token` is not a well-formed Fernet token.
 * @throws {@link WrongKeyError} if the token was signed with a different key.
 */
export function fernetDecrypt(key: Buffer, token: string): string {
  checkKey(key);
  const bytes = fromUrlSafeBase64(token);
  if (bytes.length < HEADER_BYTES + BLOCK_BYTES + HMAC_BYTES)
    throw new CorruptTokenError('too short');
  if (bytes[0] !== VERSION) throw new CorruptTokenError('unknown version byte');
  const ciphertextLength = bytes.length - HEADER_BYTES - HMAC_BYTES;
  if (ciphertextLength % BLOCK_BYTES !== 0)
    throw new CorruptTokenError('ciphertext is not whole blocks');

  const signed = bytes.subarray(0, bytes.length - HMAC_BYTES);
  const mac = bytes.subarray(bytes.length - HMAC_BYTES);
  const expected = createHmac('sha256', key.subarray(0, 16)).update(signed).digest();
  if (!timingSafeEqual(mac, expected)) throw new WrongKeyError();

  const iv = bytes.subarray(9, HEADER_BYTES);
  const decipher = createDecipheriv('aes-128-cbc', key.subarray(16, 32), iv);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(signed.subarray(HEADER_BYTES)), decipher.final()]);
  } catch {
    // Only reachable for a token signed with our key but not encrypted by Fernet.
    throw new CorruptTokenError('bad padding');
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new CorruptTokenError('plaintext is not UTF-8');
  }
}

/** URL-safe base64 with `=` padding, the form Python's `base64.urlsafe_b64encode` writes. */
export function toUrlSafeBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function fromUrlSafeBase64(text: string): Buffer {
  // Node's decoder skips characters it does not know; Python's Fernet refuses them, and so do we.
  if (!URL_SAFE_BASE64.test(text) || text.length % 4 === 1)
    throw new CorruptTokenError('not URL-safe base64');
  return Buffer.from(text, 'base64url');
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES)
    throw new RangeError(`A Fernet key is ${KEY_BYTES} bytes, got ${key.length}`);
}

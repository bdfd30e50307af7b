import { describe, expect, it } from 'vitest';
import {
  CorruptTokenError,
  WrongKeyError,
  fernetDecrypt,
  fernetEncrypt,
  toUrlSafeBase64,
} from '../../src/tokens/vault/fernet.js';
import { DEFAULT_ITERATIONS, deriveKey } from '../../src/tokens/vault/key-derivation.js';

// The vector from docs (made with Python's `cryptography`): password `pw`, 1,200,000 iterations.
const VECTOR = {
  password: 'pw',
  salt: Buffer.from('AAECAwQFBgcICQoLDA0ODw==', 'base64'),
  fernetKey: '9Rh_JA67E41fCouChhJ9_pBdHxvS2NS56PYjxQMZQaY=',
  token:
    'gAAAAABrCX0IJFhw_4oVfXcObr0jLYuuAS4laA2fdyOOlRz32Ca0Y8M6ZdAuFZd8aAa_FQT_ienbzpraYK0Z6Kgkpbr23jl_aZWBDOChw2rEHDeXYNgrxzk=',
  plaintext: 'GOOD-ACCESS-TOKEN',
};
const vectorKey = Buffer.from(VECTOR.fernetKey, 'base64url');
const otherKey = Buffer.alloc(32, 7);

describe('Python-made tokens', () => {
  it('derives the same Fernet key from password and salt as email-oauth2-proxy', async () => {
    const key = await deriveKey(VECTOR.password, VECTOR.salt, DEFAULT_ITERATIONS);
    expect(toUrlSafeBase64(key)).toBe(VECTOR.fernetKey);
  });

  it('decrypts a token made by cryptography.fernet', () => {
    expect(fernetDecrypt(vectorKey, VECTOR.token)).toBe(VECTOR.plaintext);
  });
});

describe('round trip', () => {
  it.each(['GOOD-ACCESS-TOKEN', '', 'é ☕ 日本語 🎉', 'x'.repeat(4096)])(
    'keeps %#',
    (plaintext) => {
      expect(fernetDecrypt(otherKey, fernetEncrypt(otherKey, plaintext))).toBe(plaintext);
    },
  );

  it('writes the Fernet layout: version 0x80, the given timestamp, padded URL-safe base64', () => {
    const token = fernetEncrypt(otherKey, 'abc', 1_893_456_000);
    expect(token).toMatch(/^gAAAAA[A-Za-z0-9_-]+=*$/);
    expect(token.length % 4).toBe(0);
    const bytes = Buffer.from(token, 'base64url');
    expect(bytes[0]).toBe(0x80);
    expect(bytes.readBigUInt64BE(1)).toBe(1_893_456_000n);
    // header 25 + one block + HMAC 32
    expect(bytes.length).toBe(25 + 16 + 32);
  });

  it('uses a fresh IV each time', () => {
    expect(fernetEncrypt(otherKey, 'same', 1)).not.toBe(fernetEncrypt(otherKey, 'same', 1));
  });
});

describe('refusals', () => {
  it('reports another key as WrongKeyError', () => {
    expect(() => fernetDecrypt(otherKey, VECTOR.token)).toThrow(WrongKeyError);
  });

  it('reports a changed byte as a signature mismatch, before decrypting anything', () => {
    const bytes = Buffer.from(VECTOR.token, 'base64url');
    bytes[30] = (bytes[30] ?? 0) ^ 1;
    expect(() => fernetDecrypt(vectorKey, toUrlSafeBase64(bytes))).toThrow(WrongKeyError);
  });

  it.each([
    ['not base64', 'gAAAAA!!not*base64'],
    ['empty', ''],
    ['truncated', VECTOR.token.slice(0, 60)],
    [
      'partial block',
      toUrlSafeBase64(Buffer.concat([Buffer.from(VECTOR.token, 'base64url'), Buffer.from([0])])),
    ],
    [
      'wrong version',
      toUrlSafeBase64(
        Buffer.concat([Buffer.from([0x81]), Buffer.from(VECTOR.token, 'base64url').subarray(1)]),
      ),
    ],
  ])('reports %s as CorruptTokenError', (_what, token) => {
    expect(() => fernetDecrypt(vectorKey, token)).toThrow(CorruptTokenError);
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(() => fernetEncrypt(Buffer.alloc(16), 'x')).toThrow(RangeError);
    expect(() => fernetDecrypt(Buffer.alloc(44), VECTOR.token)).toThrow(RangeError);
  });
});

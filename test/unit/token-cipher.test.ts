import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { StoredTokenFields } from '../../src/config/types.js';
import { CorruptTokenError, WrongKeyError } from '../../src/tokens/fernet.js';
import { KeyCache } from '../../src/tokens/key-cache.js';
import {
  DEFAULT_ITERATIONS,
  LEGACY_ITERATIONS,
  deriveKey,
} from '../../src/tokens/key-derivation.js';
import { TokenCipher } from '../../src/tokens/token-cipher.js';

interface Expected {
  sections: Record<string, Record<string, string>>;
  passwords: Record<string, string>;
  plaintext: Record<string, { access_token: string; refresh_token: string }>;
}
const expected = JSON.parse(
  readFileSync(new URL('../fixtures/emailproxy-compat.expected.json', import.meta.url), 'utf8'),
) as Expected;

const JOHN = 'john.smith@example.co.uk';
const LEGACY = 'legacy@example.com';
const fieldsOf = (account: string): StoredTokenFields =>
  expected.sections[account] as StoredTokenFields;
const passwordOf = (account: string): string => expected.passwords[account] ?? '';

/** Real PBKDF2, counted, so tests can see which derivations ran. */
function countingCache(): { cache: KeyCache; runs: number[] } {
  const runs: number[] = [];
  const cache = new KeyCache({
    derive: (password, salt, iterations) => {
      runs.push(iterations);
      return deriveKey(password, salt, iterations);
    },
  });
  return { cache, runs };
}

// One cache for the fixture tests: a 1.2M-iteration derivation takes ~0.4 s here.
const shared = countingCache();
const cipher = new TokenCipher(shared.cache);

describe('tokens written by email-oauth2-proxy', () => {
  it('decrypts an account with token_iterations = 1200000', async () => {
    const tokens = await cipher.decryptTokens(fieldsOf(JOHN), passwordOf(JOHN));
    expect(tokens).toEqual({
      accessToken: expected.plaintext[JOHN]?.access_token,
      refreshToken: expected.plaintext[JOHN]?.refresh_token,
      accessTokenExpiry: 1_893_456_000,
      iterations: DEFAULT_ITERATIONS,
    });
  });

  it('decrypts an account without token_iterations at the legacy 100,000', async () => {
    const tokens = await cipher.decryptTokens(fieldsOf(LEGACY), passwordOf(LEGACY));
    expect(tokens.accessToken).toBe(expected.plaintext[LEGACY]?.access_token);
    expect(tokens.refreshToken).toBe(expected.plaintext[LEGACY]?.refresh_token);
    expect(tokens.iterations).toBe(LEGACY_ITERATIONS);
  });

  it('falls back to the other iteration counts when token_iterations is wrong', async () => {
    const mislabelled = { ...fieldsOf(LEGACY), token_iterations: '1200000' };
    const tokens = await cipher.decryptTokens(mislabelled, passwordOf(LEGACY));
    expect(tokens.refreshToken).toBe(expected.plaintext[LEGACY]?.refresh_token);
    expect(tokens.iterations).toBe(LEGACY_ITERATIONS);
  });

  it('says WrongKeyError for a wrong password, after trying every candidate count', async () => {
    const before = shared.runs.length;
    await expect(
      cipher.decryptTokens(fieldsOf(JOHN), 'correct horse battery staple'),
    ).rejects.toThrow(WrongKeyError);
    expect(shared.runs.slice(before).sort()).toEqual(
      [LEGACY_ITERATIONS, DEFAULT_ITERATIONS].sort(),
    );
  });

  it('needs no derivation for a second login with the same password', async () => {
    await cipher.decryptTokens(fieldsOf(JOHN), passwordOf(JOHN));
    const before = shared.runs.length;
    await cipher.decryptTokens(fieldsOf(JOHN), passwordOf(JOHN));
    expect(shared.runs.length).toBe(before);
  });
});

describe('writing tokens', () => {
  const tokens = {
    accessToken: 'new-access',
    accessTokenExpiry: 1_900_000_000,
    refreshToken: 'new-refresh',
  };

  it('round-trips with a fresh 16-byte salt at 1,200,000 iterations', async () => {
    const fields = await cipher.encryptTokens(tokens, 'p@ss wörd');
    expect(Buffer.from(fields.token_salt ?? '', 'base64')).toHaveLength(16);
    expect(fields.token_iterations).toBe('1200000');
    expect(fields.access_token_expiry).toBe('1900000000');
    expect(fields.access_token).toMatch(/^gAAAAA/);
    expect(Math.abs(Number(fields.last_activity) - Date.now() / 1000)).toBeLessThan(5);
    await expect(cipher.decryptTokens(fields, 'p@ss wörd')).resolves.toEqual({
      ...tokens,
      iterations: DEFAULT_ITERATIONS,
    });
  });

  it('keeps an existing salt and count, so saving a refreshed token derives nothing', async () => {
    const john = fieldsOf(JOHN);
    const before = shared.runs.length;
    const fields = await cipher.encryptTokens(tokens, passwordOf(JOHN), {
      salt: john.token_salt ?? '',
      iterations: Number(john.token_iterations),
    });
    expect(shared.runs.length).toBe(before);
    expect(fields.token_salt).toBe(john.token_salt);
    await expect(cipher.decryptTokens(fields, passwordOf(JOHN))).resolves.toMatchObject(tokens);
  });

  it('moves a legacy account to a new salt at the current count', async () => {
    const legacy = fieldsOf(LEGACY);
    const fields = await cipher.encryptTokens(tokens, passwordOf(LEGACY), {
      salt: legacy.token_salt ?? '',
      iterations: LEGACY_ITERATIONS,
    });
    expect(fields.token_salt).not.toBe(legacy.token_salt);
    expect(fields.token_iterations).toBe(String(DEFAULT_ITERATIONS));
  });

  it('writes only the tokens it is given', async () => {
    const fields = await cipher.encryptTokens({ refreshToken: 'only-refresh' }, passwordOf(JOHN), {
      salt: fieldsOf(JOHN).token_salt ?? '',
      iterations: DEFAULT_ITERATIONS,
    });
    expect(Object.keys(fields).sort()).toEqual([
      'last_activity',
      'refresh_token',
      'token_iterations',
      'token_salt',
    ]);
    await expect(cipher.decryptTokens(fields, passwordOf(JOHN))).resolves.toEqual({
      refreshToken: 'only-refresh',
      iterations: DEFAULT_ITERATIONS,
    });
  });
});

describe('fields that cannot be anyone’s tokens', () => {
  it('reports no token at all as nothing to decrypt, without checking the password', async () => {
    await expect(cipher.decryptTokens({ token_salt: 'AAAA' }, 'anything')).resolves.toEqual({});
  });

  it.each<[string, StoredTokenFields]>([
    ['a missing salt', { access_token: fieldsOf(JOHN).access_token }],
    ['a salt that is not base64', { ...fieldsOf(JOHN), token_salt: 'not base64!' }],
    ['a nonsense iteration count', { ...fieldsOf(JOHN), token_iterations: 'many' }],
    ['a malformed token', { ...fieldsOf(JOHN), access_token: 'gAAAAAB-truncated' }],
  ])('reports %s as CorruptTokenError', async (_what, fields) => {
    await expect(cipher.decryptTokens(fields, passwordOf(JOHN))).rejects.toThrow(CorruptTokenError);
  });
});

describe('KeyCache', () => {
  const salt = Buffer.alloc(16, 1);

  it('shares one derivation between concurrent requests for the same key', async () => {
    const { cache, runs } = countingCache();
    const keys = await Promise.all(Array.from({ length: 20 }, () => cache.get('pw', salt, 1000)));
    expect(runs).toEqual([1000]);
    expect(new Set(keys.map((key) => key.toString('hex'))).size).toBe(1);
  });

  it('keeps passwords, salts and counts apart', async () => {
    const { cache, runs } = countingCache();
    const a = await cache.get('pw', salt, 1000);
    const b = await cache.get('pw2', salt, 1000);
    const c = await cache.get('pw', Buffer.alloc(16, 2), 1000);
    const d = await cache.get('pw', salt, 1001);
    expect(runs).toHaveLength(4);
    expect(new Set([a, b, c, d].map((key) => key.toString('hex'))).size).toBe(4);
  });

  it('hands out copies, so a caller wiping its key does not wipe the cache', async () => {
    const { cache } = countingCache();
    const first = await cache.get('pw', salt, 1000);
    const expectedHex = first.toString('hex');
    first.fill(0);
    expect((await cache.get('pw', salt, 1000)).toString('hex')).toBe(expectedHex);
  });

  it('drops the least recently used key beyond its size, and everything on clear()', async () => {
    const runs: string[] = [];
    const cache = new KeyCache({
      maxEntries: 2,
      derive: (password, s, iterations) => {
        runs.push(password);
        return deriveKey(password, s, iterations);
      },
    });
    await cache.get('a', salt, 10);
    await cache.get('b', salt, 10);
    await cache.get('a', salt, 10); // a is now the most recent
    await cache.get('c', salt, 10); // evicts b
    await cache.get('a', salt, 10);
    await cache.get('b', salt, 10);
    expect(runs).toEqual(['a', 'b', 'c', 'b']);
    cache.clear();
    expect(cache.size).toBe(0);
    await cache.get('a', salt, 10);
    expect(runs).toEqual(['a', 'b', 'c', 'b', 'a']);
  });

  it('does not keep a failed derivation', async () => {
    let calls = 0;
    const cache = new KeyCache({
      derive: async (password, s, iterations) => {
        calls += 1;
        if (calls === 1) throw new Error('threadpool hiccup');
        return deriveKey(password, s, iterations);
      },
    });
    await expect(cache.get('pw', salt, 10)).rejects.toThrow('threadpool hiccup');
    await expect(cache.get('pw', salt, 10)).resolves.toHaveLength(32);
    expect(calls).toBe(2);
  });
});

/**
 * The vault's tokens: what email-oauth2-proxy wrote opens here (the fixture was written by
 * Python), what is sealed here opens again, and keys are derived only when they must be.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { StoredTokenFields } from '../../src/config/types.js';
import { KeyCache } from '../../src/tokens/vault/key-cache.js';
import {
  DEFAULT_ITERATIONS,
  LEGACY_ITERATIONS,
  deriveKey,
} from '../../src/tokens/vault/key-derivation.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import { Vault, type AccountKey, type Opened } from '../../src/tokens/vault/vault.js';
import { accountKey, sealWith } from '../support/sealed-tokens.js';

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
const passwordOf = (account: string): Passphrase =>
  new Passphrase(expected.passwords[account] ?? '');
const plaintextOf = (account: string) => ({
  accessToken: expected.plaintext[account]?.access_token,
  refreshToken: expected.plaintext[account]?.refresh_token,
});

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
const vault = new Vault(shared.cache);

/** The opened result, or a failure saying what came back instead. */
function opened(result: Opened): Extract<Opened, { outcome: 'opened' }> {
  if (result.outcome !== 'opened')
    throw new Error(`expected the vault to open, got ${JSON.stringify(result)}`);
  return result;
}

/** The key the fields opened with; fails when nothing was opened with one. */
async function keyOf(fields: StoredTokenFields, passphrase: Passphrase): Promise<AccountKey> {
  const { key } = opened(await vault.open(fields, passphrase));
  if (!key) throw new Error('the fields opened without a key');
  return key;
}

describe('tokens written by email-oauth2-proxy', () => {
  it('opens an account with token_iterations = 1200000', async () => {
    const result = opened(await vault.open(fieldsOf(JOHN), passwordOf(JOHN)));
    expect(result.tokens).toEqual({ ...plaintextOf(JOHN), accessTokenExpiry: 1_893_456_000 });
    expect(result.unreadable).toBeUndefined();
    expect(result.key?.opens).toMatchObject({
      salt: fieldsOf(JOHN).token_salt,
      iterations: DEFAULT_ITERATIONS,
    });
    // Already current: the next save keeps the same key.
    expect(result.key?.seals).toBe(result.key?.opens);
  });

  it('opens an account without token_iterations at the legacy 100,000', async () => {
    const result = opened(await vault.open(fieldsOf(LEGACY), passwordOf(LEGACY)));
    expect(result.tokens).toMatchObject(plaintextOf(LEGACY));
    expect(result.key?.opens.iterations).toBe(LEGACY_ITERATIONS);
  });

  it('falls back to the other iteration counts when token_iterations is wrong', async () => {
    const mislabelled = { ...fieldsOf(LEGACY), token_iterations: '1200000' };
    const result = opened(await vault.open(mislabelled, passwordOf(LEGACY)));
    expect(result.tokens.refreshToken).toBe(expected.plaintext[LEGACY]?.refresh_token);
    expect(result.key?.opens.iterations).toBe(LEGACY_ITERATIONS);
  });

  it('says wrong-password for a wrong password, after trying every candidate count', async () => {
    const before = shared.runs.length;
    await expect(
      vault.open(fieldsOf(JOHN), new Passphrase('correct horse battery staple')),
    ).resolves.toEqual({ outcome: 'wrong-password', refusedBy: 'tokens' });
    expect(shared.runs.slice(before).sort()).toEqual(
      [LEGACY_ITERATIONS, DEFAULT_ITERATIONS].sort(),
    );
  });

  it('needs no derivation for a second open with the same password', async () => {
    await vault.open(fieldsOf(JOHN), passwordOf(JOHN));
    const before = shared.runs.length;
    const again = opened(await vault.open(fieldsOf(JOHN), passwordOf(JOHN)));
    expect(again.tokens).toMatchObject(plaintextOf(JOHN));
    expect(shared.runs.length).toBe(before);
  });
});

describe('sealing tokens', () => {
  const tokens = {
    accessToken: 'new-access',
    accessTokenExpiry: 1_900_000_000,
    refreshToken: 'new-refresh',
  };

  it('round-trips with a fresh 16-byte salt at 1,200,000 iterations', async () => {
    const password = new Passphrase('p@ss wörd');
    const key = await vault.newKey(password);
    const fields = vault.seal(key, { tokens });
    expect(Buffer.from(fields.token_salt ?? '', 'base64')).toHaveLength(16);
    expect(fields.token_salt).toBe(key.seals.salt);
    expect(fields.token_iterations).toBe('1200000');
    expect(fields.access_token_expiry).toBe('1900000000');
    expect(fields.access_token).toMatch(/^gAAAAA/);
    expect(fields.refresh_token).toMatch(/^gAAAAA/);
    expect(Math.abs(Number(fields.last_activity) - Date.now() / 1000)).toBeLessThan(5);

    const result = opened(await vault.open(fields, new Passphrase('p@ss wörd')));
    expect(result.tokens).toEqual(tokens);
    expect(result.key?.opens).toMatchObject({
      salt: fields.token_salt,
      iterations: DEFAULT_ITERATIONS,
    });
  });

  it('gives a new key a new salt each time', async () => {
    const password = new Passphrase('p@ss wörd');
    const first = await vault.newKey(password);
    const second = await vault.newKey(password);
    expect(second.seals.salt).not.toBe(first.seals.salt);
    expect(second.seals.bytes.equals(first.seals.bytes)).toBe(false);
  });

  it('reopens with a held key, so saving and rereading a refreshed token derives nothing', async () => {
    const key = await keyOf(fieldsOf(JOHN), passwordOf(JOHN));
    const before = shared.runs.length;
    expect(vault.reopen(key, fieldsOf(JOHN))).toEqual({
      ...plaintextOf(JOHN),
      accessTokenExpiry: 1_893_456_000,
    });
    const fields = vault.seal(key, { tokens });
    expect(fields.token_salt).toBe(fieldsOf(JOHN).token_salt);
    expect(fields.token_iterations).toBe(fieldsOf(JOHN).token_iterations);
    expect(vault.reopen(key, fields)).toEqual(tokens);
    expect(shared.runs.length).toBe(before);
  });

  it('moves a legacy account to a new salt at the current count, still opening the old fields', async () => {
    const legacy = fieldsOf(LEGACY);
    const key = await keyOf(legacy, passwordOf(LEGACY));
    expect(key.opens).toMatchObject({ salt: legacy.token_salt, iterations: LEGACY_ITERATIONS });
    expect(key.seals.salt).not.toBe(legacy.token_salt);
    expect(Buffer.from(key.seals.salt, 'base64')).toHaveLength(16);
    expect(key.seals.iterations).toBe(DEFAULT_ITERATIONS);

    const fields = vault.seal(key, { tokens });
    expect(fields.token_salt).toBe(key.seals.salt);
    expect(fields.token_iterations).toBe(String(DEFAULT_ITERATIONS));
    expect(vault.reopen(key, fields)).toEqual(tokens);
    expect(vault.reopen(key, legacy)).toMatchObject(plaintextOf(LEGACY));

    const result = opened(await vault.open(fields, passwordOf(LEGACY)));
    expect(result.tokens).toEqual(tokens);
    expect(result.key?.opens.iterations).toBe(DEFAULT_ITERATIONS);
  });

  it('derives the upgrade key of a legacy account once, however many logins open it', async () => {
    const legacy = fieldsOf(LEGACY);
    const first = await keyOf(legacy, passwordOf(LEGACY));
    const before = shared.runs.length;
    const again = await keyOf(legacy, passwordOf(LEGACY));
    expect(shared.runs.length).toBe(before);
    expect(again.seals.salt).toBe(first.seals.salt);
  });

  it('writes only the tokens it is given', async () => {
    const key = await keyOf(fieldsOf(JOHN), passwordOf(JOHN));
    const fields = vault.seal(key, { tokens: { refreshToken: 'only-refresh' } });
    expect(Object.keys(fields).sort()).toEqual([
      'last_activity',
      'refresh_token',
      'token_iterations',
      'token_salt',
    ]);
    const result = opened(await vault.open(fields, passwordOf(JOHN)));
    expect(result.tokens).toEqual({ refreshToken: 'only-refresh' });
  });

  it('reopens nothing that is sealed under another password’s key', async () => {
    const mine = await keyOf(fieldsOf(JOHN), passwordOf(JOHN));
    const salt = Buffer.from(fieldsOf(JOHN).token_salt ?? '', 'base64');
    // Another password with the very same salt: only decryption can tell them apart.
    const sameSalt = await accountKey('another password', 1_000, salt);
    const underSameSalt = sealWith(sameSalt, tokens);
    expect(underSameSalt.token_salt).toBe(fieldsOf(JOHN).token_salt);
    expect(vault.reopen(sameSalt, underSameSalt)).toEqual(tokens);
    expect(vault.reopen(mine, underSameSalt)).toBeUndefined();

    // Another password's fresh key: another salt.
    const fresh = await accountKey('another password', 1_000);
    const underFresh = sealWith(fresh, tokens);
    expect(vault.reopen(fresh, underFresh)).toEqual(tokens);
    expect(vault.reopen(mine, underFresh)).toBeUndefined();
  });
});

describe('fields that cannot be anyone’s tokens', () => {
  it('opens fields without any token as nothing, with no key and no password check', async () => {
    const before = shared.runs.length;
    await expect(vault.open({ token_salt: 'AAAA' }, new Passphrase('anything'))).resolves.toEqual({
      outcome: 'opened',
      key: undefined,
      tokens: {},
      clientSecret: undefined,
    });
    expect(shared.runs.length).toBe(before);
  });

  it.each<[string, StoredTokenFields, RegExp]>([
    [
      'a missing salt',
      { access_token: fieldsOf(JOHN).access_token! },
      /the account has tokens but no token_salt/,
    ],
    [
      'a salt that is not base64',
      { ...fieldsOf(JOHN), token_salt: 'not base64!' },
      /token_salt is not base64/,
    ],
    [
      'a nonsense iteration count',
      { ...fieldsOf(JOHN), token_iterations: 'many' },
      /token_iterations is not a usable iteration count/,
    ],
    [
      'a malformed token',
      { ...fieldsOf(JOHN), access_token: 'gAAAAAB-truncated' },
      /Not a valid Fernet token/,
    ],
  ])('opens %s as unreadable, with no tokens and no key', async (_what, fields, why) => {
    const result = opened(await vault.open(fields, passwordOf(JOHN)));
    expect(result.unreadable).toMatch(why);
    expect(result.tokens).toEqual({});
    expect(result.key).toBeUndefined();
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

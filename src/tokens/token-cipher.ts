/**
 * email-oauth2-proxy's per-account token encryption: the token fields of one account, encrypted
 * with a key derived from the password the mail client logs in with.
 *
 * Compatible both ways: tokens it wrote decrypt here, and tokens written here decrypt there
 * (we always write `token_iterations`, which it reads).
 */

import { randomBytes } from 'node:crypto';
import type { StoredTokenFields } from '../config/types.js';
import { CorruptTokenError, WrongKeyError, fernetDecrypt, fernetEncrypt } from './fernet.js';
import type { KeyCache } from './key-cache.js';
import { DEFAULT_ITERATIONS, LEGACY_ITERATIONS } from './key-derivation.js';

const SALT_BYTES = 16;
const STANDARD_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Far above any real setting; stops a typo in the store from occupying the threadpool for minutes. */
const MAX_ITERATIONS = 100_000_000;

/** Tokens in the clear. */
export interface PlainTokens {
  accessToken?: string;
  /** Unix seconds. */
  accessTokenExpiry?: number;
  refreshToken?: string;
}

/** What {@link TokenCipher.decryptTokens} found. */
export interface DecryptedTokens extends PlainTokens {
  /**
   * The iteration count whose key opened the tokens. Absent when the fields held no encrypted token,
   * in which case the password was not checked at all.
   */
  iterations?: number;
}

/** The salt and iteration count an account's tokens are currently encrypted under. */
export interface KeyParameters {
  /** Standard base64, as in `token_salt`. */
  salt: string;
  iterations: number;
}

/**
 * Encrypts and decrypts one account's token fields. Keys come from a shared {@link KeyCache}, so
 * repeated logins with the same password derive nothing.
 */
export class TokenCipher {
  constructor(private readonly keys: KeyCache) {}

  /**
   * Decrypts `access_token` and `refresh_token`. The key is derived with `token_iterations` (absent
   * means {@link LEGACY_ITERATIONS}); if its signature check fails, {@link DEFAULT_ITERATIONS} and
   * {@link LEGACY_ITERATIONS} are tried too, as email-oauth2-proxy does.
   *
   * @throws {@link WrongKeyError} if no candidate key opens the tokens: the password is wrong.
   * @throws {@link CorruptTokenError} if the fields cannot be tokens of any password (bad salt, bad
   *   iteration count, malformed token). The tokens are unusable; the account needs authorising again.
   */
  async decryptTokens(fields: StoredTokenFields, password: string): Promise<DecryptedTokens> {
    const result: DecryptedTokens = {};
    const expiry = parseExpiry(fields.access_token_expiry);
    if (expiry !== undefined) result.accessTokenExpiry = expiry;
    if (fields.access_token === undefined && fields.refresh_token === undefined) return result;

    const salt = parseSalt(fields.token_salt);
    const candidates = [
      ...new Set([parseIterations(fields.token_iterations), DEFAULT_ITERATIONS, LEGACY_ITERATIONS]),
    ];

    // Each field is tried with every candidate, like Python's MultiFernet; the first hit is tried first.
    const open = async (token: string): Promise<{ plaintext: string; iterations: number }> => {
      for (const iterations of candidates) {
        const key = await this.keys.get(password, salt, iterations);
        try {
          const plaintext = fernetDecrypt(key, token);
          candidates.splice(candidates.indexOf(iterations), 1);
          candidates.unshift(iterations);
          return { plaintext, iterations };
        } catch (error) {
          if (!(error instanceof WrongKeyError)) throw error;
        } finally {
          key.fill(0);
        }
      }
      throw new WrongKeyError();
    };

    if (fields.access_token !== undefined) {
      const opened = await open(fields.access_token);
      result.accessToken = opened.plaintext;
      result.iterations = opened.iterations;
    }
    if (fields.refresh_token !== undefined) {
      const opened = await open(fields.refresh_token);
      result.refreshToken = opened.plaintext;
      result.iterations ??= opened.iterations;
    }
    return result;
  }

  /**
   * Encrypts tokens into the fields email-oauth2-proxy writes, `last_activity` set to now.
   *
   * Pass `existing` (the account's current `token_salt` / `token_iterations`) to keep them: the key is
   * then usually already in the cache and saving a refreshed token costs no derivation. Reusing the
   * salt is safe even when the password has changed, because every Fernet token has its own random
   * IV; the salt only has to differ between accounts and installations. An `existing` count below
   * {@link DEFAULT_ITERATIONS} is not kept: the tokens move to a fresh salt at the current count (one
   * derivation, once), so legacy stores are upgraded as they are used.
   */
  async encryptTokens(
    tokens: PlainTokens,
    password: string,
    existing?: KeyParameters,
  ): Promise<StoredTokenFields> {
    const keep = existing !== undefined && existing.iterations >= DEFAULT_ITERATIONS;
    const salt = keep ? parseSalt(existing.salt) : randomBytes(SALT_BYTES);
    const iterations = keep ? parseIterations(String(existing.iterations)) : DEFAULT_ITERATIONS;
    const key = await this.keys.get(password, salt, iterations);
    const now = Math.floor(Date.now() / 1000);
    try {
      const fields: StoredTokenFields = {};
      if (tokens.accessToken !== undefined)
        fields.access_token = fernetEncrypt(key, tokens.accessToken, now);
      if (tokens.accessTokenExpiry !== undefined) {
        fields.access_token_expiry = String(Math.floor(tokens.accessTokenExpiry));
      }
      if (tokens.refreshToken !== undefined)
        fields.refresh_token = fernetEncrypt(key, tokens.refreshToken, now);
      fields.token_salt = salt.toString('base64');
      fields.token_iterations = String(iterations);
      fields.last_activity = String(now);
      return fields;
    } finally {
      key.fill(0);
    }
  }
}

/**
 * An account's unlocked key: what the daemon keeps after a login instead of the password, so it
 * can save refreshed tokens (and refresh idle accounts in the background) without holding the
 * password the user may use elsewhere.
 */
export interface AccountKey {
  /** Standard base64, as in `token_salt`. */
  readonly salt: string;
  readonly iterations: number;
  /** The 32-byte Fernet key. */
  readonly key: Buffer;
}

/** Account-key operations, built on the same cache and format as {@link TokenCipher}. */
export class AccountKeys {
  constructor(private readonly keys: KeyCache) {}

  /**
   * Checks the password against the stored tokens and returns the key that opened them with the
   * tokens in the clear.
   *
   * @throws {@link WrongKeyError} / {@link CorruptTokenError} as {@link TokenCipher.decryptTokens}.
   */
  async unlock(
    fields: StoredTokenFields,
    password: string,
  ): Promise<{ key: AccountKey; tokens: DecryptedTokens }> {
    const tokens = await new TokenCipher(this.keys).decryptTokens(fields, password);
    const iterations = tokens.iterations ?? DEFAULT_ITERATIONS;
    const salt = parseSalt(fields.token_salt);
    return {
      key: {
        salt: salt.toString('base64'),
        iterations,
        key: await this.keys.get(password, salt, iterations),
      },
      tokens,
    };
  }

  /**
   * The key this password gives with the fields' `token_salt` that opens `token`, a value
   * encrypted under the account's key other than the tokens (`client_secret_encrypted`), which
   * must open even when there are no tokens to check the password against. `token_iterations` is
   * tried first, then the current and legacy counts, as email-oauth2-proxy's MultiFernet does.
   *
   * @throws {@link WrongKeyError} if no candidate key opens it.
   * @throws {@link CorruptTokenError} if the salt, the iteration count or the token is malformed.
   */
  async unlockValue(
    fields: StoredTokenFields,
    password: string,
    token: string,
  ): Promise<{ key: AccountKey; plaintext: string }> {
    const salt = parseSalt(fields.token_salt);
    const candidates = [
      ...new Set([parseIterations(fields.token_iterations), DEFAULT_ITERATIONS, LEGACY_ITERATIONS]),
    ];
    for (const iterations of candidates) {
      const key = await this.keys.get(password, salt, iterations);
      try {
        return {
          key: { salt: salt.toString('base64'), iterations, key },
          plaintext: fernetDecrypt(key, token),
        };
      } catch (error) {
        key.fill(0);
        if (!(error instanceof WrongKeyError)) throw error;
      }
    }
    throw new WrongKeyError();
  }

  /** A fresh key for a password: new random salt, current iteration count. */
  async create(password: string): Promise<AccountKey> {
    const salt = randomBytes(SALT_BYTES);
    return {
      salt: salt.toString('base64'),
      iterations: DEFAULT_ITERATIONS,
      key: await this.keys.get(password, salt, DEFAULT_ITERATIONS),
    };
  }

  /** Encrypts tokens into the fields email-oauth2-proxy writes, `last_activity` set to now. */
  seal(key: AccountKey, tokens: PlainTokens): StoredTokenFields {
    const now = Math.floor(Date.now() / 1000);
    const fields: StoredTokenFields = {};
    if (tokens.accessToken !== undefined)
      fields.access_token = fernetEncrypt(key.key, tokens.accessToken, now);
    if (tokens.accessTokenExpiry !== undefined)
      fields.access_token_expiry = String(Math.floor(tokens.accessTokenExpiry));
    if (tokens.refreshToken !== undefined)
      fields.refresh_token = fernetEncrypt(key.key, tokens.refreshToken, now);
    fields.token_salt = key.salt;
    fields.token_iterations = String(key.iterations);
    fields.last_activity = String(now);
    return fields;
  }

  /**
   * Decrypts fields with a known key (no derivation).
   *
   * @throws {@link WrongKeyError} when the fields were re-encrypted under another password
   *   meanwhile (by the CLI, say).
   */
  open(key: AccountKey, fields: StoredTokenFields): DecryptedTokens {
    if (fields.token_salt !== undefined && fields.token_salt.trim() !== key.salt)
      throw new WrongKeyError();
    const result: DecryptedTokens = { iterations: key.iterations };
    const expiry = parseExpiry(fields.access_token_expiry);
    if (expiry !== undefined) result.accessTokenExpiry = expiry;
    if (fields.access_token !== undefined)
      result.accessToken = fernetDecrypt(key.key, fields.access_token);
    if (fields.refresh_token !== undefined)
      result.refreshToken = fernetDecrypt(key.key, fields.refresh_token);
    return result;
  }
}

function parseSalt(text: string | undefined): Buffer {
  if (text === undefined) throw new CorruptTokenError('the account has tokens but no token_salt');
  const trimmed = text.trim();
  if (!STANDARD_BASE64.test(trimmed) || trimmed.length % 4 !== 0 || trimmed.length === 0) {
    throw new CorruptTokenError('token_salt is not base64');
  }
  return Buffer.from(trimmed, 'base64');
}

function parseIterations(text: string | undefined): number {
  if (text === undefined) return LEGACY_ITERATIONS;
  const iterations = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new CorruptTokenError(`token_iterations is not a usable iteration count`);
  }
  return iterations;
}

function parseExpiry(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text.trim());
  // Python writes an int; a float from a hand edit is fine, anything else is as good as expired.
  return text.trim() !== '' && Number.isFinite(seconds) ? seconds : undefined;
}

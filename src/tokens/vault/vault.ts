/**
 * The vault: every secret at rest goes in and out here. An account's stored fields (the token
 * store's section, else tokens left in its config section) hold its tokens and, with
 * email-oauth2-proxy's `encrypt_client_secret_on_first_use`, its client secret
 * (`client_secret_encrypted`), all Fernet-encrypted under one key derived from the mail client's
 * password and the section's `token_salt`.
 *
 *   open(fields, passphrase)  the key, the tokens and the client secret, or why not (as values)
 *   reopen(key, fields)       the tokens again, with a key already opened (no derivation)
 *   seal(key, contents)       the fields to store: tokens and client secret under one key
 *   newKey(passphrase)        a fresh salt, for tokens nothing was stored for
 *
 * The passphrase goes no further than here: callers keep the {@link AccountKey}. Compatible with
 * email-oauth2-proxy both ways: what it wrote opens here, and what is sealed here opens there (we
 * always write `token_iterations`, which it reads).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AccountConfig, StoredTokenFields } from '../../config/types.js';
import type { TokenStore } from '../stores/token-store.js';
import type { TokenSubject } from '../subject.js';
import { CorruptTokenError, WrongKeyError, fernetDecrypt, fernetEncrypt } from './fernet.js';
import { KeyCache } from './key-cache.js';
import { DEFAULT_ITERATIONS, LEGACY_ITERATIONS } from './key-derivation.js';
import { textOf, type Passphrase } from './passphrase.js';

/** Tokens in the clear. */
export interface PlainTokens {
  accessToken?: string;
  /** Unix seconds. */
  accessTokenExpiry?: number;
  refreshToken?: string;
}

/** A key derived from a password, with the salt and iteration count it was derived with. */
export interface DerivedKey {
  /** Standard base64, as in `token_salt`. */
  readonly salt: string;
  readonly iterations: number;
  /** The 32-byte Fernet key. */
  readonly bytes: Buffer;
}

/**
 * An account's unlocked key: what the daemon keeps after a login instead of the password, so it
 * can save refreshed tokens (and refresh idle accounts in the background). `opens` is the key the
 * stored fields are under; `seals` the one the next save uses: the same, except for a store from an
 * older email-oauth2-proxy, which moves to a fresh salt at the current iteration count.
 */
export interface AccountKey {
  readonly opens: DerivedKey;
  readonly seals: DerivedKey;
}

/** What {@link Vault.open} found. */
export type Opened =
  | {
      readonly outcome: 'opened';
      /** Undefined when nothing stored was encrypted (no tokens): the password was not checked. */
      readonly key: AccountKey | undefined;
      /** Empty when none were stored, or when they were {@link unreadable}. */
      readonly tokens: PlainTokens;
      /** The decrypted `client_secret_encrypted`; undefined when the account has none. */
      readonly clientSecret: string | undefined;
      /** Why the stored tokens cannot be used with any password; the account needs authorising. */
      readonly unreadable?: string;
      /** Why the client secret cannot be decrypted although the password is right; a config fix. */
      readonly secretProblem?: string;
    }
  | {
      readonly outcome: 'wrong-password';
      /** What refused it: the stored tokens, or (with no tokens to open) the stored client secret. */
      readonly refusedBy: 'tokens' | 'client-secret';
    };

/** What {@link Vault.seal} encrypts. */
export interface VaultContents {
  readonly tokens: PlainTokens;
  /** The account's decrypted client secret, re-encrypted with the tokens so a new salt never strands it. */
  readonly clientSecret?: string | undefined;
}

/** Where an account's stored fields were found. */
export interface AccountFields {
  readonly fields: StoredTokenFields | undefined;
  /** True when the fields came from the token store, false when from the config section. */
  readonly fromStore: boolean;
}

const SALT_BYTES = 16;
const STANDARD_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Far above any real setting; stops a typo in the store from occupying the threadpool for minutes. */
const MAX_ITERATIONS = 100_000_000;

/** Reads an account's stored fields: the token store first, then the config section. Store errors propagate. */
export async function readFields(store: TokenStore, subject: TokenSubject): Promise<AccountFields> {
  const stored = await store.read(subject.key);
  if (stored) return { fields: stored, fromStore: true };
  return { fields: subject.account.tokensInConfig, fromStore: false };
}

/**
 * The encrypted client secret that applies to the account: none when the config has a plain
 * `client_secret` (it wins, as in email-oauth2-proxy), else the one in the section in use
 * (`fields`), else the one in the config section.
 */
export function encryptedClientSecret(
  account: AccountConfig,
  fields: StoredTokenFields | undefined,
): string | undefined {
  if (account.clientSecret) return undefined;
  return fields?.client_secret_encrypted ?? account.clientSecretEncrypted;
}

/** What a login is told when its password does not open the stored client secret (and no tokens vouch for it). */
export function secretPasswordRefused(loginName: string): string {
  return `Wrong password for ${loginName}: it does not decrypt the account's stored client secret (client_secret_encrypted)`;
}

/** Whether the fields hold tokens (encrypted or not yet checked). */
export function hasTokens(fields: StoredTokenFields | undefined): fields is StoredTokenFields {
  return fields?.access_token !== undefined || fields?.refresh_token !== undefined;
}

/** The fields without their tokens: the salt and an encrypted client secret stay for the next ones. */
export function withoutTokens(fields: StoredTokenFields): StoredTokenFields {
  const { access_token: _a, access_token_expiry: _e, refresh_token: _r, ...rest } = fields;
  return rest;
}

export class Vault {
  /** Upgrade keys of legacy stores, by opening key (see {@link Vault.upgradeOf}). */
  private readonly upgrades = new Map<string, Promise<DerivedKey>>();

  /**
   * Keys derived so far, so only the first login after start pays for PBKDF2 (see
   * {@link KeyCache}: it never holds the password itself).
   */
  constructor(private readonly keys: KeyCache = new KeyCache()) {}

  /**
   * Opens an account's stored fields with the mail client's password. `subject` brings the
   * account's client secret rules; without it only the tokens are opened.
   *
   * A `token_iterations` that does not open the tokens is followed by the current and the legacy
   * counts, as email-oauth2-proxy's MultiFernet does. A key from a legacy count comes with a fresh
   * one to seal with (one derivation, once).
   */
  async open(
    fields: StoredTokenFields | undefined,
    passphrase: Passphrase,
    subject?: TokenSubject,
  ): Promise<Opened> {
    const password = textOf(passphrase);
    let tokens: PlainTokens = {};
    let opens: DerivedKey | undefined;
    let unreadable: string | undefined;
    if (hasTokens(fields)) {
      try {
        ({ tokens, key: opens } = await this.openTokens(fields, password));
      } catch (error) {
        if (error instanceof WrongKeyError)
          return { outcome: 'wrong-password', refusedBy: 'tokens' };
        if (!(error instanceof CorruptTokenError)) throw error;
        unreadable = error.message;
      }
    }

    let clientSecret: string | undefined;
    let secretProblem: string | undefined;
    if (subject) {
      const secret = await this.openClientSecret(subject, fields, password, opens);
      if (secret.outcome === 'wrong-password')
        return { outcome: 'wrong-password', refusedBy: 'client-secret' };
      if (secret.outcome === 'undecryptable') secretProblem = secret.problem;
      else clientSecret = secret.secret;
    }

    const key = opens && {
      opens,
      seals: opens.iterations < DEFAULT_ITERATIONS ? await this.upgradeOf(opens, password) : opens,
    };
    return {
      outcome: 'opened',
      key,
      tokens,
      clientSecret,
      ...(unreadable !== undefined && { unreadable }),
      ...(secretProblem !== undefined && { secretProblem }),
    };
  }

  /**
   * Only the client secret, for a flow about to replace the tokens: tokens the password does not
   * open (the mail password has changed, say) leave the secret alone to say whether it is right.
   */
  async openClientSecretOnly(
    fields: StoredTokenFields | undefined,
    passphrase: Passphrase,
    subject: TokenSubject,
  ): Promise<
    | { readonly outcome: 'opened'; readonly clientSecret: string | undefined }
    | { readonly outcome: 'wrong-password' }
    | { readonly outcome: 'undecryptable'; readonly problem: string }
  > {
    let opened = await this.open(fields, passphrase, subject);
    if (opened.outcome === 'wrong-password' && opened.refusedBy === 'tokens')
      opened = await this.open(fields && withoutTokens(fields), passphrase, subject);
    if (opened.outcome === 'wrong-password') return { outcome: 'wrong-password' };
    if (opened.secretProblem !== undefined)
      return { outcome: 'undecryptable', problem: opened.secretProblem };
    return { outcome: 'opened', clientSecret: opened.clientSecret };
  }

  /**
   * The tokens in fields sealed under `key` (by this process or another holding the same
   * password). Undefined when they are under another key now: re-encrypted with another password.
   */
  reopen(key: AccountKey, fields: StoredTokenFields): PlainTokens | undefined {
    const salt = fields.token_salt?.trim();
    const derived = [key.seals, key.opens].find((candidate) => candidate.salt === salt);
    if (!derived) return undefined;
    try {
      return {
        ...expiryOf(fields),
        ...(fields.access_token !== undefined && {
          accessToken: fernetDecrypt(derived.bytes, fields.access_token),
        }),
        ...(fields.refresh_token !== undefined && {
          refreshToken: fernetDecrypt(derived.bytes, fields.refresh_token),
        }),
      };
    } catch {
      return undefined;
    }
  }

  /** A key for tokens nothing was stored for: a fresh salt at the current iteration count. */
  async newKey(passphrase: Passphrase): Promise<AccountKey> {
    const derived = await this.derive(
      textOf(passphrase),
      randomBytes(SALT_BYTES),
      DEFAULT_ITERATIONS,
    );
    return { opens: derived, seals: derived };
  }

  /** The fields email-oauth2-proxy writes for these contents, `last_activity` set to now. */
  seal(key: AccountKey, { tokens, clientSecret }: VaultContents): StoredTokenFields {
    const { bytes, salt, iterations } = key.seals;
    const now = Math.floor(Date.now() / 1000);
    const fields: StoredTokenFields = {};
    if (tokens.accessToken !== undefined)
      fields.access_token = fernetEncrypt(bytes, tokens.accessToken, now);
    if (tokens.accessTokenExpiry !== undefined)
      fields.access_token_expiry = String(Math.floor(tokens.accessTokenExpiry));
    if (tokens.refreshToken !== undefined)
      fields.refresh_token = fernetEncrypt(bytes, tokens.refreshToken, now);
    fields.token_salt = salt;
    fields.token_iterations = String(iterations);
    fields.last_activity = String(now);
    if (clientSecret !== undefined)
      fields.client_secret_encrypted = fernetEncrypt(bytes, clientSecret, now);
    return fields;
  }

  /**
   * `access_token` and `refresh_token` in the clear, with the key that opened them. Each is tried
   * with every candidate key, the last hit first.
   *
   * @throws {@link WrongKeyError} if no candidate key opens them: the password is wrong.
   * @throws {@link CorruptTokenError} if they cannot be tokens of any password.
   */
  private async openTokens(
    fields: StoredTokenFields,
    password: string,
  ): Promise<{ tokens: PlainTokens; key: DerivedKey }> {
    const tokens: PlainTokens = expiryOf(fields);
    let key: DerivedKey | undefined;
    for (const field of ['access_token', 'refresh_token'] as const) {
      const value = fields[field];
      if (value === undefined) continue;
      const opened = await this.decrypt(fields, password, value, key?.iterations);
      key ??= opened.key;
      if (field === 'access_token') tokens.accessToken = opened.plaintext;
      else tokens.refreshToken = opened.plaintext;
    }
    if (!key) throw new CorruptTokenError('the account has no tokens');
    return { tokens, key };
  }

  /**
   * Decrypts the account's `client_secret_encrypted`, if it has one.
   *
   * The section in use (`fields`) is tried with `opened`, the key that opened its tokens, or,
   * without tokens, with the key the password gives for its salt. When that section holds no
   * encrypted secret but the config section does (a config email-oauth2-proxy wrote, next to a
   * fresh token store), the config section's own salt and iteration count are used.
   */
  private async openClientSecret(
    subject: TokenSubject,
    fields: StoredTokenFields | undefined,
    password: string,
    opened: DerivedKey | undefined,
  ): Promise<
    | { readonly outcome: 'none' | 'opened'; readonly secret?: string }
    | { readonly outcome: 'wrong-password' }
    | { readonly outcome: 'undecryptable'; readonly problem: string }
  > {
    const { account } = subject;
    if (account.clientSecret) return { outcome: 'none' };
    const inSection = fields?.client_secret_encrypted;
    const [section, value] =
      inSection !== undefined
        ? [fields ?? {}, inSection]
        : [account.tokensInConfig ?? {}, account.clientSecretEncrypted];
    if (value === undefined) return { outcome: 'none' };
    const undecryptable = (why: string) =>
      ({
        outcome: 'undecryptable',
        problem:
          `The client secret of ${subject.key} is stored encrypted (client_secret_encrypted), but ${why}. ` +
          `Put the client secret in client_secret in the [${account.name}] section of the config file`,
      }) as const;
    if (section.token_salt === undefined)
      return undecryptable('its section has no token_salt to decrypt it with');
    try {
      const tryFirst = inSection !== undefined ? opened?.iterations : undefined;
      return {
        outcome: 'opened',
        secret: (await this.decrypt(section, password, value, tryFirst)).plaintext,
      };
    } catch (error) {
      // Only the tokens vouch for a password: without them a refusal means a mistyped one.
      if (error instanceof WrongKeyError && !opened) return { outcome: 'wrong-password' };
      if (error instanceof WrongKeyError)
        return undecryptable("the password that decrypts the account's tokens does not decrypt it");
      if (error instanceof CorruptTokenError)
        return undecryptable(`it cannot be read (${error.message})`);
      throw error;
    }
  }

  /**
   * Decrypts one value of the section with the key the password gives for its `token_salt`:
   * `tryFirst`'s iteration count, then `token_iterations` (absent means {@link LEGACY_ITERATIONS}),
   * then the current and the legacy counts.
   *
   * @throws {@link WrongKeyError} if no candidate key opens it.
   * @throws {@link CorruptTokenError} if the salt, the iteration count or the value is malformed.
   */
  private async decrypt(
    section: StoredTokenFields,
    password: string,
    value: string,
    tryFirst?: number,
  ): Promise<{ plaintext: string; key: DerivedKey }> {
    const salt = parseSalt(section.token_salt);
    const stated = parseIterations(section.token_iterations);
    const candidates = new Set([tryFirst ?? stated, stated, DEFAULT_ITERATIONS, LEGACY_ITERATIONS]);
    for (const iterations of candidates) {
      const key = await this.derive(password, salt, iterations);
      try {
        return { plaintext: fernetDecrypt(key.bytes, value), key };
      } catch (error) {
        key.bytes.fill(0);
        if (!(error instanceof WrongKeyError)) throw error;
      }
    }
    throw new WrongKeyError();
  }

  /**
   * The current-count key a legacy key seals with: one per opening key, so every login until the
   * next save seals under the same fresh salt rather than paying for a new derivation each time.
   */
  private upgradeOf(opens: DerivedKey, password: string): Promise<DerivedKey> {
    const name = `${opens.salt}:${createHash('sha256').update(opens.bytes).digest('base64')}`;
    let upgrade = this.upgrades.get(name);
    if (!upgrade) {
      upgrade = this.derive(password, randomBytes(SALT_BYTES), DEFAULT_ITERATIONS);
      this.upgrades.set(name, upgrade);
      upgrade.catch(() => this.upgrades.delete(name));
    }
    return upgrade;
  }

  private async derive(password: string, salt: Buffer, iterations: number): Promise<DerivedKey> {
    return {
      salt: salt.toString('base64'),
      iterations,
      bytes: await this.keys.get(password, salt, iterations),
    };
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

/** `access_token_expiry` as a number, when it is one. */
function expiryOf(fields: StoredTokenFields): PlainTokens {
  const text = fields.access_token_expiry?.trim();
  if (text === undefined || text === '') return {};
  const seconds = Number(text);
  // Python writes an int; a float from a hand edit is fine, anything else is as good as expired.
  return Number.isFinite(seconds) ? { accessTokenExpiry: seconds } : {};
}

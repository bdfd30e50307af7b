/**
 * email-oauth2-proxy's `client_secret_encrypted`: with `encrypt_client_secret_on_first_use` it
 * replaces `client_secret` by the secret Fernet-encrypted under the account's token key (the
 * mail password with that section's `token_salt`), kept in the config section or, with
 * `--cache-store`, in the cache file beside the tokens. We read it the same way, use it for every
 * request to the provider, and re-encrypt it whenever the tokens are sealed, so that a new salt
 * (a legacy upgrade, a new authorisation) never strands it under a key nobody can derive.
 *
 * The decrypted secret lives in memory only; it is never logged, and no message here contains it.
 */

import type { AccountConfig, StoredTokenFields } from '../config/types.js';
import { OAuthError, type ProviderClientOptions } from '../oauth/index.js';
import { CorruptTokenError, WrongKeyError, fernetDecrypt, fernetEncrypt } from './fernet.js';
import type { TokenSubject } from './subject.js';
import type { AccountKey, AccountKeys } from './token-cipher.js';

/**
 * `client_secret_encrypted` could not be decrypted with the login's password. `wrong-password`:
 * nothing else vouches for the password (no stored tokens opened with it), so it is most likely
 * mistyped. `undecryptable`: the password is right (it opened the tokens) or cannot matter (no
 * salt, malformed value); only putting the secret in `client_secret` helps.
 */
export class EncryptedClientSecretError extends Error {
  override readonly name = 'EncryptedClientSecretError';

  constructor(
    readonly problem: 'wrong-password' | 'undecryptable',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The encrypted secret that applies to the account: none when the config has a plain
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

/**
 * Decrypts the account's `client_secret_encrypted` with the login's password.
 *
 * The section in use (`fields`: the token store's, else the config's) is tried with `unlocked`,
 * the key that opened its tokens (taken before any switch to a new key), or, without tokens, with
 * the key the password gives for its salt. When that section holds no encrypted secret but the
 * config section does (a config email-oauth2-proxy wrote, next to a fresh token store), the config
 * section's own salt and iteration count are used.
 *
 * @param unlocked - the key that opened the section's tokens with this password, if it has tokens
 * @returns the secret, or undefined when the account has a plain `client_secret` or no encrypted one
 * @throws {@link EncryptedClientSecretError}
 */
export async function decryptClientSecret(
  keys: AccountKeys,
  subject: TokenSubject,
  fields: StoredTokenFields | undefined,
  password: string,
  unlocked?: AccountKey,
): Promise<string | undefined> {
  const { account } = subject;
  if (account.clientSecret) return undefined;
  const inSection = fields?.client_secret_encrypted;
  if (inSection !== undefined) {
    if (unlocked) {
      try {
        return fernetDecrypt(unlocked.key, inSection);
      } catch (error) {
        // Python re-encrypts everything together, but a hand-edited section may mix iteration counts.
        if (!(error instanceof WrongKeyError)) throw undecryptable(subject, describe(error));
      }
    }
    return openWithPassword(
      keys,
      subject,
      fields ?? {},
      password,
      inSection,
      unlocked !== undefined,
    );
  }
  if (account.clientSecretEncrypted === undefined) return undefined;
  return openWithPassword(
    keys,
    subject,
    account.tokensInConfig ?? {},
    password,
    account.clientSecretEncrypted,
    unlocked !== undefined,
  );
}

/** `fields` with `client_secret_encrypted` set to `secret` encrypted under `key` (the tokens' key). */
export function withEncryptedClientSecret(
  fields: StoredTokenFields,
  key: AccountKey,
  secret: string,
): StoredTokenFields {
  return { ...fields, client_secret_encrypted: fernetEncrypt(key.key, secret) };
}

/**
 * What a request needs when the secret is stored encrypted and no login has decrypted it yet:
 * only the mail password can, and nothing else holds it.
 */
export function clientSecretLocked(key: string): OAuthError {
  return new OAuthError(
    `The client secret of ${key} is stored encrypted (client_secret_encrypted) and no login has decrypted it yet`,
    {
      kind: 'config',
      code: 'client_secret_locked',
      hint: 'Log in once with the mail client so the proxy can decrypt it, or put the secret in client_secret.',
      configKey: 'client_secret',
    },
  );
}

/**
 * The daemon's decrypted secrets, per token subject, learned at each login and used for every
 * request to the provider for that account, including background refreshes and pending
 * authorisations completed later.
 */
export class ClientSecrets {
  private readonly secrets = new Map<string, string>();
  /** Accounts a login found without an encrypted secret: their requests need no store read. */
  private readonly withoutSecret = new Set<string>();

  constructor(private readonly keys: AccountKeys) {}

  /**
   * Decrypts and remembers the account's encrypted secret, if it has one (see
   * {@link decryptClientSecret}); a plain `client_secret` needs nothing.
   *
   * @throws {@link EncryptedClientSecretError}
   */
  async learn(
    subject: TokenSubject,
    fields: StoredTokenFields | undefined,
    password: string,
    unlocked?: AccountKey,
  ): Promise<void> {
    const secret = await decryptClientSecret(this.keys, subject, fields, password, unlocked);
    if (secret === undefined) {
      this.withoutSecret.add(subject.key);
    } else {
      this.secrets.set(subject.key, secret);
      this.withoutSecret.delete(subject.key);
    }
  }

  /**
   * The provider-client options for one request of the account: `base` plus the decrypted secret
   * when it has one. `readFields` is only asked while no login has looked, to tell a public client
   * from one whose secret waits in the token store.
   *
   * @throws OAuthError of kind `config` ({@link clientSecretLocked}) when the secret is stored
   *   encrypted and no login has decrypted it.
   */
  async options(
    subject: TokenSubject,
    base: ProviderClientOptions,
    readFields: () => Promise<StoredTokenFields | undefined>,
  ): Promise<ProviderClientOptions> {
    if (subject.account.clientSecret) return base;
    const secret = this.secrets.get(subject.key);
    if (secret !== undefined) return { ...base, clientSecret: secret };
    if (this.withoutSecret.has(subject.key)) return base;
    // An unreadable store is reported by whoever reads it next; here it only means "not known to be encrypted".
    const fields = await readFields().catch(() => undefined);
    if (encryptedClientSecret(subject.account, fields) !== undefined)
      throw clientSecretLocked(subject.key);
    return base;
  }

  /**
   * Adds the re-encrypted secret to freshly sealed fields when the account's secret came from
   * `client_secret_encrypted`; fields of accounts with a plain or no secret are returned as they are.
   */
  seal(subject: TokenSubject, key: AccountKey, fields: StoredTokenFields): StoredTokenFields {
    if (subject.account.clientSecret) return fields;
    const secret = this.secrets.get(subject.key);
    return secret === undefined ? fields : withEncryptedClientSecret(fields, key, secret);
  }
}

async function openWithPassword(
  keys: AccountKeys,
  subject: TokenSubject,
  section: StoredTokenFields,
  password: string,
  token: string,
  passwordVouched: boolean,
): Promise<string> {
  if (section.token_salt === undefined)
    throw undecryptable(subject, 'its section has no token_salt to decrypt it with');
  try {
    return (await keys.unlockValue(section, password, token)).plaintext;
  } catch (error) {
    if (error instanceof WrongKeyError && !passwordVouched) {
      throw new EncryptedClientSecretError(
        'wrong-password',
        `Wrong password for ${subject.loginName}: it does not decrypt the account's stored client secret (client_secret_encrypted)`,
      );
    }
    if (error instanceof WrongKeyError)
      throw undecryptable(
        subject,
        "the password that decrypts the account's tokens does not decrypt it",
      );
    if (error instanceof CorruptTokenError) throw undecryptable(subject, describe(error));
    throw error;
  }
}

function undecryptable(subject: TokenSubject, why: string): EncryptedClientSecretError {
  return new EncryptedClientSecretError(
    'undecryptable',
    `The client secret of ${subject.key} is stored encrypted (client_secret_encrypted), but ${why}. ` +
      `Put the client secret in client_secret in the [${subject.account.name}] section of the config file`,
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `it cannot be read (${error.message})` : 'it cannot be read';
}

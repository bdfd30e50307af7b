/**
 * email-oauth2-proxy's `client_secret_encrypted`: decrypted with the key that opens the tokens
 * (or, without tokens, the key the password gives for the section's salt), and re-encrypted
 * whenever tokens are sealed. Sections are made with our own AccountKeys.seal plus fernetEncrypt,
 * a faithful stand-in for Python's: token-cipher.test.ts proves both match it byte for byte.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AccountConfig, StoredTokenFields } from '../../src/config/types.js';
import { OAuthError } from '../../src/oauth/index.js';
import {
  ClientSecrets,
  decryptClientSecret,
  EncryptedClientSecretError,
  encryptedClientSecret,
  withEncryptedClientSecret,
} from '../../src/tokens/client-secret.js';
import { fernetDecrypt, fernetEncrypt } from '../../src/tokens/fernet.js';
import { KeyCache } from '../../src/tokens/key-cache.js';
import { LEGACY_ITERATIONS } from '../../src/tokens/key-derivation.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { AccountKeys, type AccountKey } from '../../src/tokens/token-cipher.js';

const USER = 'john@example.com';
const PASSWORD = 'mail client password';
const SECRET = 'the-client-secret~Q8.x';
// One cache for the whole file: each new salt costs one 1.2M-iteration derivation.
const keys = new AccountKeys(new KeyCache());

function subjectWith(extra: Partial<AccountConfig> = {}): TokenSubject {
  const account: AccountConfig = {
    name: USER,
    permissionUrl: 'https://login.example.com/authorize',
    tokenUrl: 'https://login.example.com/token',
    scope: 'mail offline_access',
    redirectUri: 'http://localhost/',
    clientId: 'client',
    flow: 'authorization_code',
    usePkce: false,
    ...extra,
  };
  return { key: USER, account, loginName: USER };
}

/** A section as email-oauth2-proxy leaves it: tokens and the secret under one key. */
async function section(
  password = PASSWORD,
  options: { tokens?: boolean; secretKey?: AccountKey } = {},
): Promise<{ fields: StoredTokenFields; key: AccountKey }> {
  const key = await keys.create(password);
  const fields = keys.seal(
    key,
    options.tokens === false
      ? {}
      : { accessToken: 'access', accessTokenExpiry: 1, refreshToken: 'refresh' },
  );
  return {
    fields: {
      ...fields,
      client_secret_encrypted: fernetEncrypt((options.secretKey ?? key).key, SECRET),
    },
    key,
  };
}

async function failure(promise: Promise<unknown>): Promise<EncryptedClientSecretError> {
  const error = await promise.then(
    () => expect.fail('expected a failure'),
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(EncryptedClientSecretError);
  return error as EncryptedClientSecretError;
}

describe('decrypting client_secret_encrypted', () => {
  it('opens it with the key that opened the tokens', async () => {
    const { fields } = await section();
    const { key } = await keys.unlock(fields, PASSWORD);
    expect(await decryptClientSecret(keys, subjectWith(), fields, PASSWORD, key)).toBe(SECRET);
  });

  it('opens it with the password alone when the section has no tokens (only token_salt beside it)', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    expect(fields.access_token).toBeUndefined();
    expect(await decryptClientSecret(keys, subjectWith(), fields, PASSWORD)).toBe(SECRET);
  });

  it('a plain client_secret wins: nothing is decrypted, nothing is asked', async () => {
    const { fields } = await section();
    const plain = subjectWith({
      clientSecret: 'plain',
      clientSecretEncrypted: fields.client_secret_encrypted!,
    });
    expect(encryptedClientSecret(plain.account, fields)).toBeUndefined();
    expect(await decryptClientSecret(keys, plain, fields, 'any password')).toBeUndefined();
  });

  it('without tokens, a password that does not open it is a wrong password', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    const error = await failure(
      decryptClientSecret(keys, subjectWith(), fields, 'not the password'),
    );
    expect(error.problem).toBe('wrong-password');
    expect(error.message).toBe(
      `Wrong password for ${USER}: it does not decrypt the account's stored client secret (client_secret_encrypted)`,
    );
  });

  it("a secret the tokens' password cannot open is a config problem that says to use client_secret", async () => {
    const other = await keys.create('another password');
    const { fields } = await section(PASSWORD, { secretKey: other });
    const { key } = await keys.unlock(fields, PASSWORD);
    const error = await failure(decryptClientSecret(keys, subjectWith(), fields, PASSWORD, key));
    expect(error.problem).toBe('undecryptable');
    expect(error.message).toBe(
      `The client secret of ${USER} is stored encrypted (client_secret_encrypted), but the password that decrypts the account's tokens ` +
        `does not decrypt it. Put the client secret in client_secret in the [${USER}] section of the config file`,
    );
    expect(error.message).not.toContain(SECRET);
  });

  it('a section without token_salt cannot be decrypted, and says so', async () => {
    const subject = subjectWith({ clientSecretEncrypted: 'gAAAAA-anything' });
    const error = await failure(decryptClientSecret(keys, subject, undefined, PASSWORD));
    expect(error.problem).toBe('undecryptable');
    expect(error.message).toContain('its section has no token_salt');
  });

  it("falls back to the config section's own salt when the token store's section has no secret", async () => {
    // email-oauth2-proxy wrote tokens and the secret into the config; the user then pointed us at a
    // new token store, where our tokens got another salt.
    const inConfig = await section();
    const subject = subjectWith({
      clientSecretEncrypted: inConfig.fields.client_secret_encrypted!,
      tokensInConfig: inConfig.fields,
    });
    const store = await keys.create(PASSWORD);
    const storeFields = keys.seal(store, { refreshToken: 'newer' });
    expect(encryptedClientSecret(subject.account, storeFields)).toBe(
      inConfig.fields.client_secret_encrypted,
    );
    expect(await decryptClientSecret(keys, subject, storeFields, PASSWORD, store)).toBe(SECRET);

    const elsewhere = await keys.create('the store password');
    const error = await failure(
      decryptClientSecret(
        keys,
        subject,
        keys.seal(elsewhere, { refreshToken: 'r' }),
        'the store password',
        elsewhere,
      ),
    );
    expect(error.problem).toBe('undecryptable');
  });

  it('tries the other iteration counts, as email-oauth2-proxy does (a legacy section without token_iterations)', async () => {
    const salt = Buffer.alloc(16, 7).toString('base64');
    const legacy = await new KeyCache().get(
      PASSWORD,
      Buffer.from(salt, 'base64'),
      LEGACY_ITERATIONS,
    );
    const fields: StoredTokenFields = {
      token_salt: salt,
      client_secret_encrypted: fernetEncrypt(legacy, SECRET),
    };
    expect(await decryptClientSecret(keys, subjectWith(), fields, PASSWORD)).toBe(SECRET);
  });

  it("opens values Python encrypted (the fixture's access token stands in for a secret)", async () => {
    const expected = JSON.parse(
      readFileSync(new URL('../fixtures/emailproxy-compat.expected.json', import.meta.url), 'utf8'),
    ) as {
      sections: Record<string, StoredTokenFields>;
      passwords: Record<string, string>;
      plaintext: Record<string, { access_token: string }>;
    };
    const john = 'john.smith@example.co.uk';
    const fields = expected.sections[john]!;
    const opened = await keys.unlockValue(fields, expected.passwords[john]!, fields.access_token!);
    expect(opened.plaintext).toBe(expected.plaintext[john]!.access_token);
  });
});

describe('ClientSecrets: remembered per account, sent with every request, re-encrypted with every save', () => {
  const base = { requestTimeoutMs: 1_000 };

  it('refuses a request before any login decrypted a stored secret, with what to do', async () => {
    const { fields } = await section();
    const secrets = new ClientSecrets(keys);
    const error = await secrets
      .options(subjectWith(), base, async () => fields)
      .then(
        () => expect.fail('expected a refusal'),
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(OAuthError);
    expect(error).toMatchObject({
      kind: 'config',
      configKey: 'client_secret',
      message: `The client secret of ${USER} is stored encrypted (client_secret_encrypted) and no login has decrypted it yet`,
      hint: 'Log in once with the mail client so the proxy can decrypt it, or put the secret in client_secret.',
    });
  });

  it('sends the decrypted secret once a login has opened it, and nothing for a public client', async () => {
    const { fields, key } = await section();
    const secrets = new ClientSecrets(keys);
    await secrets.learn(subjectWith(), fields, PASSWORD, key);
    expect(await secrets.options(subjectWith(), base, async () => fields)).toEqual({
      ...base,
      clientSecret: SECRET,
    });
    expect(
      await secrets.options(
        { ...subjectWith(), key: 'public@example.com' },
        base,
        async () => ({}),
      ),
    ).toEqual(base);
  });

  it('re-encrypts the secret under whatever key new tokens are sealed with', async () => {
    const { fields, key } = await section();
    const secrets = new ClientSecrets(keys);
    await secrets.learn(subjectWith(), fields, PASSWORD, key);
    const fresh = await keys.create(PASSWORD);
    const sealed = secrets.seal(subjectWith(), fresh, keys.seal(fresh, { refreshToken: 'r' }));
    expect(sealed.token_salt).toBe(fresh.salt);
    expect(sealed.token_salt).not.toBe(fields.token_salt);
    expect(fernetDecrypt(fresh.key, sealed.client_secret_encrypted!)).toBe(SECRET);
    expect(
      await decryptClientSecret(
        keys,
        subjectWith(),
        sealed,
        PASSWORD,
        (await keys.unlock(sealed, PASSWORD)).key,
      ),
    ).toBe(SECRET);
  });

  it('never writes client_secret_encrypted for an account with a plain client_secret', async () => {
    const { fields, key } = await section();
    const secrets = new ClientSecrets(keys);
    await secrets.learn(subjectWith(), fields, PASSWORD, key);
    const plain = subjectWith({ clientSecret: 'plain' });
    expect(secrets.seal(plain, key, keys.seal(key, { refreshToken: 'r' }))).not.toHaveProperty(
      'client_secret_encrypted',
    );
    expect(await secrets.options(plain, base, async () => fields)).toEqual(base);
  });

  it('withEncryptedClientSecret adds only that field', async () => {
    const key = await keys.create(PASSWORD);
    const sealed = keys.seal(key, { accessToken: 'a' });
    const withSecret = withEncryptedClientSecret(sealed, key, SECRET);
    expect(Object.keys(withSecret).sort()).toEqual(
      [...Object.keys(sealed), 'client_secret_encrypted'].sort(),
    );
  });
});

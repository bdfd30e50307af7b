/**
 * email-oauth2-proxy's `client_secret_encrypted` in the vault: opened with the key that opens the
 * tokens (or, without tokens, the key the password gives for the section's salt), and sealed
 * again under whatever key the tokens are sealed with. Sections are made with fernetEncrypt, a
 * stand-in for Python's (fernet.test.ts checks its layout and that it reads Python's tokens); the
 * last opening test here opens values Python encrypted.
 *
 * What the daemon does with the result (the refusal before any login, the "Wrong password"
 * message) is the token manager's, tested in token-manager-client-secret.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AccountConfig, StoredTokenFields } from '../../src/config/types.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { fernetDecrypt, fernetEncrypt } from '../../src/tokens/vault/fernet.js';
import { KeyCache } from '../../src/tokens/vault/key-cache.js';
import { DEFAULT_ITERATIONS, LEGACY_ITERATIONS } from '../../src/tokens/vault/key-derivation.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import {
  Vault,
  encryptedClientSecret,
  type AccountKey,
  type Opened,
} from '../../src/tokens/vault/vault.js';
import { accountKey, sealWith } from '../support/sealed-tokens.js';

const USER = 'john@example.com';
const PASSWORD = 'mail client password';
const SECRET = 'the-client-secret~Q8.x';
const TOKENS = { accessToken: 'access', accessTokenExpiry: 1, refreshToken: 'refresh' };
// One vault for the whole file: each new salt costs one 1.2M-iteration derivation.
const vault = new Vault(new KeyCache());
const passphrase = (text = PASSWORD): Passphrase => new Passphrase(text);

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
  const key = await vault.newKey(passphrase(password));
  const fields = vault.seal(key, { tokens: options.tokens === false ? {} : TOKENS });
  return {
    fields: {
      ...fields,
      client_secret_encrypted: fernetEncrypt((options.secretKey ?? key).seals.bytes, SECRET),
    },
    key,
  };
}

/** The opened result, or a failure saying what came back instead. */
function opened(result: Opened): Extract<Opened, { outcome: 'opened' }> {
  if (result.outcome !== 'opened')
    throw new Error(`expected the vault to open, got ${JSON.stringify(result)}`);
  return result;
}

/** The message of a secret the vault cannot decrypt although the password is right. */
const undecryptable = (why: string): string =>
  `The client secret of ${USER} is stored encrypted (client_secret_encrypted), but ${why}. ` +
  `Put the client secret in client_secret in the [${USER}] section of the config file`;

describe('opening client_secret_encrypted', () => {
  it('opens it with the key that opened the tokens', async () => {
    const { fields } = await section();
    const result = opened(await vault.open(fields, passphrase(), subjectWith()));
    expect(result.clientSecret).toBe(SECRET);
    expect(result.secretProblem).toBeUndefined();
    expect(result.tokens).toEqual(TOKENS);
    expect(result.key?.opens.salt).toBe(fields.token_salt);
  });

  it('opens nothing without a subject: only the tokens', async () => {
    const { fields } = await section();
    const result = opened(await vault.open(fields, passphrase()));
    expect(result.tokens).toEqual(TOKENS);
    expect(result.clientSecret).toBeUndefined();
  });

  it('opens it with the password alone when the section has no tokens (only token_salt beside it)', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    expect(fields.access_token).toBeUndefined();
    const result = opened(await vault.open(fields, passphrase(), subjectWith()));
    expect(result.clientSecret).toBe(SECRET);
    expect(result.key).toBeUndefined();
  });

  it('opens no secret for an account that has none stored anywhere (a public client)', async () => {
    const key = await vault.newKey(passphrase());
    const fields = vault.seal(key, { tokens: TOKENS });
    const result = opened(await vault.open(fields, passphrase(), subjectWith()));
    expect(result.clientSecret).toBeUndefined();
    expect(result.secretProblem).toBeUndefined();
    expect(result.tokens).toEqual(TOKENS);
  });

  it('a plain client_secret wins: nothing is decrypted, nothing is asked', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    const plain = subjectWith({
      clientSecret: 'plain',
      clientSecretEncrypted: fields.client_secret_encrypted!,
    });
    expect(encryptedClientSecret(plain.account, fields)).toBeUndefined();
    await expect(vault.open(fields, passphrase('any password'), plain)).resolves.toEqual({
      outcome: 'opened',
      key: undefined,
      tokens: {},
      clientSecret: undefined,
    });
  });

  it('without tokens, a password that does not open it is a wrong password', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    await expect(
      vault.open(fields, passphrase('not the password'), subjectWith()),
    ).resolves.toEqual({ outcome: 'wrong-password', refusedBy: 'client-secret' });
  });

  it("a secret the tokens' password cannot open is a config problem that says to use client_secret", async () => {
    const other = await vault.newKey(passphrase('another password'));
    const { fields } = await section(PASSWORD, { secretKey: other });
    const result = opened(await vault.open(fields, passphrase(), subjectWith()));
    expect(result.clientSecret).toBeUndefined();
    expect(result.secretProblem).toBe(
      undecryptable("the password that decrypts the account's tokens does not decrypt it"),
    );
    expect(result.secretProblem).not.toContain(SECRET);
  });

  it('a secret that is not a Fernet token cannot be read, and says so', async () => {
    const { fields } = await section();
    const result = opened(
      await vault.open(
        { ...fields, client_secret_encrypted: 'gAAAAAB-truncated' },
        passphrase(),
        subjectWith(),
      ),
    );
    expect(result.clientSecret).toBeUndefined();
    expect(result.secretProblem).toMatch(
      /^The client secret of john@example\.com is stored encrypted \(client_secret_encrypted\), but it cannot be read \(Not a valid Fernet token: .*\)\. Put the client secret in client_secret/,
    );
  });

  it('a section without token_salt cannot be decrypted, and says so', async () => {
    const subject = subjectWith({ clientSecretEncrypted: 'gAAAAA-anything' });
    const result = opened(await vault.open(undefined, passphrase(), subject));
    expect(result.clientSecret).toBeUndefined();
    expect(result.secretProblem).toBe(
      undecryptable('its section has no token_salt to decrypt it with'),
    );
  });

  it("falls back to the config section's own salt when the token store's section has no secret", async () => {
    // email-oauth2-proxy wrote tokens and the secret into the config; the user then pointed us at a
    // new token store, where our tokens got another salt.
    const inConfig = await section();
    const subject = subjectWith({
      clientSecretEncrypted: inConfig.fields.client_secret_encrypted!,
      tokensInConfig: inConfig.fields,
    });
    const store = await vault.newKey(passphrase());
    const storeFields = vault.seal(store, { tokens: { refreshToken: 'newer' } });
    expect(storeFields.token_salt).not.toBe(inConfig.fields.token_salt);
    expect(encryptedClientSecret(subject.account, storeFields)).toBe(
      inConfig.fields.client_secret_encrypted,
    );
    const result = opened(await vault.open(storeFields, passphrase(), subject));
    expect(result.clientSecret).toBe(SECRET);
    expect(result.tokens).toEqual({ refreshToken: 'newer' });

    // Tokens the store's password opens vouch for it: the config's secret is then a config problem.
    const elsewhere = await vault.newKey(passphrase('the store password'));
    const other = opened(
      await vault.open(
        vault.seal(elsewhere, { tokens: { refreshToken: 'r' } }),
        passphrase('the store password'),
        subject,
      ),
    );
    expect(other.clientSecret).toBeUndefined();
    expect(other.secretProblem).toBe(
      undecryptable("the password that decrypts the account's tokens does not decrypt it"),
    );
  });

  it.each<[string, StoredTokenFields]>([
    ['a legacy section without token_iterations', {}],
    ['a section whose token_iterations is not the count it used', { token_iterations: '1200000' }],
  ])('tries the other iteration counts, as email-oauth2-proxy does (%s)', async (_what, extra) => {
    const salt = Buffer.alloc(16, 7);
    const legacy = await accountKey(PASSWORD, LEGACY_ITERATIONS, salt);
    const fields: StoredTokenFields = {
      token_salt: salt.toString('base64'),
      client_secret_encrypted: fernetEncrypt(legacy.seals.bytes, SECRET),
      ...extra,
    };
    const result = opened(await vault.open(fields, passphrase(), subjectWith()));
    expect(result.clientSecret).toBe(SECRET);
  });

  it("opens values Python encrypted (the fixture's tokens stand in for a secret)", async () => {
    const expected = JSON.parse(
      readFileSync(new URL('../fixtures/emailproxy-compat.expected.json', import.meta.url), 'utf8'),
    ) as {
      sections: Record<string, StoredTokenFields>;
      passwords: Record<string, string>;
      plaintext: Record<string, { access_token: string; refresh_token: string }>;
    };
    const john = 'john.smith@example.co.uk';
    const fields = expected.sections[john]!;
    const password = passphrase(expected.passwords[john]);

    // Without tokens: the password and the section's salt and count alone.
    const alone = opened(
      await vault.open(
        {
          token_salt: fields.token_salt!,
          token_iterations: fields.token_iterations!,
          client_secret_encrypted: fields.access_token!,
        },
        password,
        subjectWith(),
      ),
    );
    expect(alone.clientSecret).toBe(expected.plaintext[john]!.access_token);

    // Beside the tokens: with the key that opened them.
    const beside = opened(
      await vault.open(
        {
          token_salt: fields.token_salt!,
          token_iterations: fields.token_iterations!,
          access_token: fields.access_token!,
          client_secret_encrypted: fields.refresh_token!,
        },
        password,
        subjectWith(),
      ),
    );
    expect(beside.tokens.accessToken).toBe(expected.plaintext[john]!.access_token);
    expect(beside.clientSecret).toBe(expected.plaintext[john]!.refresh_token);
  });
});

describe('openClientSecretOnly: the secret for a flow about to replace the tokens', () => {
  /** Tokens under `tokensPassword` and the secret under PASSWORD, both with one salt. */
  async function changedPassword(tokensPassword: string): Promise<StoredTokenFields> {
    const salt = Buffer.alloc(16, 9);
    const forTokens = await accountKey(tokensPassword, 1_000, salt);
    const forSecret = await accountKey(PASSWORD, 1_000, salt);
    return {
      ...sealWith(forTokens, TOKENS),
      client_secret_encrypted: fernetEncrypt(forSecret.seals.bytes, SECRET),
    };
  }

  it('opens the secret beside tokens the password opens', async () => {
    const { fields } = await section();
    await expect(vault.openClientSecretOnly(fields, passphrase(), subjectWith())).resolves.toEqual({
      outcome: 'opened',
      clientSecret: SECRET,
    });
  });

  it('lets the secret say whether the password is right when the tokens refuse it (the mail password changed)', async () => {
    const fields = await changedPassword('the old mail password');
    await expect(vault.open(fields, passphrase(), subjectWith())).resolves.toEqual({
      outcome: 'wrong-password',
      refusedBy: 'tokens',
    });
    await expect(vault.openClientSecretOnly(fields, passphrase(), subjectWith())).resolves.toEqual({
      outcome: 'opened',
      clientSecret: SECRET,
    });
  });

  it('is a wrong password when neither the tokens nor the secret open with it', async () => {
    const fields = await changedPassword('the old mail password');
    await expect(
      vault.openClientSecretOnly(fields, passphrase('not the password'), subjectWith()),
    ).resolves.toEqual({ outcome: 'wrong-password' });
  });

  it('is a wrong password when the secret alone refuses it', async () => {
    const { fields } = await section(PASSWORD, { tokens: false });
    await expect(
      vault.openClientSecretOnly(fields, passphrase('not the password'), subjectWith()),
    ).resolves.toEqual({ outcome: 'wrong-password' });
  });

  it("says why a secret the tokens' password cannot open is undecryptable", async () => {
    const other = await vault.newKey(passphrase('another password'));
    const { fields } = await section(PASSWORD, { secretKey: other });
    await expect(vault.openClientSecretOnly(fields, passphrase(), subjectWith())).resolves.toEqual({
      outcome: 'undecryptable',
      problem: undecryptable("the password that decrypts the account's tokens does not decrypt it"),
    });
  });

  it('opens no secret for a plain client_secret, whatever the password', async () => {
    const { fields } = await section();
    const plain = subjectWith({ clientSecret: 'plain' });
    await expect(
      vault.openClientSecretOnly(fields, passphrase('any password'), plain),
    ).resolves.toEqual({ outcome: 'opened', clientSecret: undefined });
  });
});

describe('sealing: the secret goes under whatever key the tokens are sealed with', () => {
  it('re-encrypts the secret under a new key', async () => {
    const { fields } = await section();
    const { clientSecret } = opened(await vault.open(fields, passphrase(), subjectWith()));
    const fresh = await vault.newKey(passphrase());
    const sealed = vault.seal(fresh, { tokens: { refreshToken: 'r' }, clientSecret });
    expect(sealed.token_salt).toBe(fresh.seals.salt);
    expect(sealed.token_salt).not.toBe(fields.token_salt);
    expect(fernetDecrypt(fresh.seals.bytes, sealed.client_secret_encrypted!)).toBe(SECRET);
    const again = opened(await vault.open(sealed, passphrase(), subjectWith()));
    expect(again.clientSecret).toBe(SECRET);
    expect(again.tokens).toEqual({ refreshToken: 'r' });
  });

  it('moves the secret of a legacy section to the new salt with its tokens', async () => {
    const legacyKey = await accountKey(PASSWORD, LEGACY_ITERATIONS);
    const { token_iterations: _stated, ...legacy } = sealWith(legacyKey, TOKENS);
    legacy.client_secret_encrypted = fernetEncrypt(legacyKey.seals.bytes, SECRET);

    const { key, clientSecret } = opened(await vault.open(legacy, passphrase(), subjectWith()));
    expect(clientSecret).toBe(SECRET);
    expect(key?.opens.iterations).toBe(LEGACY_ITERATIONS);
    expect(key?.seals.iterations).toBe(DEFAULT_ITERATIONS);
    expect(key?.seals.salt).not.toBe(legacy.token_salt);

    const sealed = vault.seal(key!, { tokens: TOKENS, clientSecret });
    expect(sealed.token_salt).toBe(key?.seals.salt);
    expect(fernetDecrypt(key!.seals.bytes, sealed.client_secret_encrypted!)).toBe(SECRET);
    const again = opened(await vault.open(sealed, passphrase(), subjectWith()));
    expect(again.clientSecret).toBe(SECRET);
    expect(again.key?.opens.iterations).toBe(DEFAULT_ITERATIONS);
  });

  it('never writes client_secret_encrypted for an account with a plain client_secret', async () => {
    const { fields } = await section();
    const plain = subjectWith({ clientSecret: 'plain' });
    const { key, clientSecret } = opened(await vault.open(fields, passphrase(), plain));
    expect(clientSecret).toBeUndefined();
    expect(vault.seal(key!, { tokens: { refreshToken: 'r' }, clientSecret })).not.toHaveProperty(
      'client_secret_encrypted',
    );
  });

  it('adds only client_secret_encrypted to what the tokens are sealed into', async () => {
    const key = await vault.newKey(passphrase());
    const tokens = { accessToken: 'a' };
    const withoutSecret = vault.seal(key, { tokens });
    const withSecret = vault.seal(key, { tokens, clientSecret: SECRET });
    expect(Object.keys(withSecret).sort()).toEqual(
      [...Object.keys(withoutSecret), 'client_secret_encrypted'].sort(),
    );
    expect(withSecret.token_salt).toBe(withoutSecret.token_salt);
  });
});

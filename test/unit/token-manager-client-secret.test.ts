/**
 * The token manager with a client secret stored encrypted (`client_secret_encrypted`), against
 * the real test identity provider in-process: its desktop and service clients are confidential
 * and refuse any token request without their secret, so every success here proves the secret was
 * decrypted and sent. The token store is a real file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LoginFailure } from '../../src/auth/types.js';
import type { AccountConfig, StoredTokenFields } from '../../src/config/types.js';
import { completeAuthorization, OAuthError, startAuthorization } from '../../src/oauth/index.js';
import { fernetDecrypt, fernetEncrypt } from '../../src/tokens/vault/fernet.js';
import { DEFAULT_ITERATIONS, LEGACY_ITERATIONS } from '../../src/tokens/vault/key-derivation.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import type { AccountKey } from '../../src/tokens/vault/vault.js';
import { accountKey, openingKey, sealWith } from '../support/sealed-tokens.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import type { TokenManager } from '../../src/tokens/token-manager.js';
import { testTokenManager } from '../support/token-manager.js';
import { OFFICE365_TEST_SCOPE, startIdp, type Idp } from '../peers/idp.js';

const USER = 'desk.user@example.com';
const PASSWORD = 'mail client password';

let idp: Idp;
let dir: string;
let store: FileTokenStore;

beforeAll(async () => {
  idp = await startIdp({ defaultUser: USER });
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async (context) => {
  dir = await mkdtemp(join(tmpdir(), 'omp-secret-'));
  store = new FileTokenStore(join(dir, 'tokens.ini'));
  idp.resetTokenRequests();
  context.onTestFinished(() => rm(dir, { recursive: true, force: true }));
});

/** The desktop client's account with no client_secret in the config: the secret is only stored encrypted. */
function desktop(extra: Partial<AccountConfig> = {}): TokenSubject {
  const account: AccountConfig = {
    name: USER,
    permissionUrl: idp.urls.authorize,
    tokenUrl: idp.urls.token,
    scope: OFFICE365_TEST_SCOPE,
    redirectUri: 'http://localhost/',
    clientId: idp.clients.desktop.clientId,
    flow: 'authorization_code',
    usePkce: true,
    ...extra,
  };
  return { key: USER, account, loginName: USER };
}

function manager(
  options: { loginWaitMs?: number; deleteTokensOnWrongPassword?: boolean } = {},
): TokenManager {
  return testTokenManager(store, options);
}

/** Real tokens of the desktop client (its secret sent by hand), as an earlier sign-in left them. */
async function desktopTokens(): Promise<{ accessToken: string; refreshToken: string }> {
  const secret = { clientSecret: idp.clients.desktop.clientSecret };
  const pending = await startAuthorization(desktop().account, { ...secret, loginHint: USER });
  const tokens = await completeAuthorization(
    desktop().account,
    pending,
    await idp.browser(pending.url),
    secret,
  );
  return { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken! };
}

/** A key at any iteration count (the vault only makes current ones). */
function keyAt(iterations: number): Promise<AccountKey> {
  return accountKey(PASSWORD, iterations);
}

/** Writes a section as email-oauth2-proxy leaves it: expired tokens and the secret under `key`. */
async function seed(
  key: AccountKey,
  options: { tokens?: boolean; secretKey?: AccountKey } = {},
): Promise<StoredTokenFields> {
  const tokens =
    options.tokens === false
      ? {}
      : { ...(await desktopTokens()), accessTokenExpiry: Math.floor(Date.now() / 1000) - 60 };
  const fields = {
    ...sealWith(key, tokens),
    client_secret_encrypted: fernetEncrypt(
      (options.secretKey ?? key).seals.bytes,
      idp.clients.desktop.clientSecret,
    ),
  };
  await store.write(USER, fields);
  idp.resetTokenRequests();
  return fields;
}

/** The store's secret, decrypted with the key the password gives for the store's own salt. */
async function storedSecret(): Promise<{ fields: StoredTokenFields; secret: string }> {
  const fields = (await store.read(USER))!;
  const key = await openingKey(fields, PASSWORD);
  return { fields, secret: fernetDecrypt(key.opens.bytes, fields.client_secret_encrypted!) };
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a refusal'),
    (err: unknown) => err,
  );
}

describe('a client secret stored encrypted beside the tokens', () => {
  it('without it the provider refuses the refresh: this client is confidential', async () => {
    const fields = await seed(await accountKey(PASSWORD));
    const { client_secret_encrypted: _dropped, ...withoutSecret } = fields;
    await store.write(USER, withoutSecret);
    const error = await refusal(manager().accessToken(desktop(), new Passphrase(PASSWORD)));
    expect(error).toBeInstanceOf(LoginFailure);
    expect(error).toMatchObject({ reason: 'config' });
    expect((error as Error).message).toMatch(/invalid_client|client/i);
  });

  it('is decrypted by the login, sent with the refresh, and re-encrypted under the new key of a legacy upgrade', async () => {
    const legacy = await keyAt(LEGACY_ITERATIONS);
    const before = await seed(legacy);
    expect(before.token_iterations).toBe(String(LEGACY_ITERATIONS));

    const accessToken = await manager().accessToken(desktop(), new Passphrase(PASSWORD));
    expect(accessToken).toBeTruthy();
    expect(idp.tokenRequests.byGrantType.refresh_token).toBe(1);

    const { fields, secret } = await storedSecret();
    expect(fields.token_iterations).toBe(String(DEFAULT_ITERATIONS));
    expect(fields.token_salt).not.toBe(before.token_salt);
    expect(fields.client_secret_encrypted).not.toBe(before.client_secret_encrypted);
    expect(secret).toBe(idp.clients.desktop.clientSecret);
  });

  it('is used by background refreshes of an account a login made known', async () => {
    await seed(await accountKey(PASSWORD));
    const tokens = manager();
    let known: TokenSubject | undefined;
    tokens.on('known', (subject) => (known = subject));
    await tokens.accessToken(desktop(), new Passphrase(PASSWORD));
    idp.resetTokenRequests();

    expect(await tokens.refreshIfDue(known!, true)).toMatchObject({ outcome: 'refreshed' });
    expect(idp.tokenRequests.byGrantType.refresh_token).toBe(1);
    expect((await storedSecret()).secret).toBe(idp.clients.desktop.clientSecret);
  });

  it("that the tokens' password cannot decrypt makes the login fail as a config problem naming the fix", async () => {
    await seed(await accountKey(PASSWORD), { secretKey: await accountKey('another password') });
    const error = await refusal(manager().accessToken(desktop(), new Passphrase(PASSWORD)));
    expect(error).toBeInstanceOf(LoginFailure);
    expect(error).toMatchObject({ reason: 'config' });
    expect((error as Error).message).toContain('client_secret_encrypted');
    expect((error as Error).message).toContain('Put the client secret in client_secret');
    expect(idp.tokenRequests.total).toBe(0);
  });

  it('is not deleted with the tokens on a wrong password (delete_account_token_on_password_error)', async () => {
    const before = await seed(await accountKey(PASSWORD));
    const error = await refusal(
      manager({ deleteTokensOnWrongPassword: true }).accessToken(
        desktop(),
        new Passphrase('not the password'),
      ),
    );
    expect(error).toMatchObject({ reason: 'bad-password' });
    expect((error as Error).message).toContain('client_secret_encrypted');
    expect(await store.read(USER)).toEqual(before);
  });
});

describe('authorising an account whose secret is stored encrypted', () => {
  it('is refused before any login has decrypted the secret, saying what to do', async () => {
    await seed(await accountKey(PASSWORD), { tokens: false });
    const error = await refusal(manager().authorize(desktop()));
    expect(error).toBeInstanceOf(OAuthError);
    expect(error).toMatchObject({
      kind: 'config',
      message: `The client secret of ${USER} is stored encrypted (client_secret_encrypted) and no login has decrypted it yet`,
      hint: 'Log in once with the mail client so the proxy can decrypt it, or put the secret in client_secret.',
    });
  });

  it('a login decrypts it from a section without tokens, the code exchange sends it, and the new key re-encrypts it', async () => {
    const before = await seed(await accountKey(PASSWORD), { tokens: false });
    const tokens = manager({ loginWaitMs: 20_000 });
    const login = tokens.accessToken(desktop(), new Passphrase(PASSWORD));
    const pending = await new Promise<{ url: string }>((resolve) =>
      tokens.pending.once('pending', resolve),
    );
    await tokens.pending.complete(USER, await idp.browser(pending.url));
    expect(await login).toBeTruthy();
    expect(idp.tokenRequests.byGrantType.authorization_code).toBe(1);

    const { fields, secret } = await storedSecret();
    expect(fields.token_salt).not.toBe(before.token_salt);
    expect(fields.refresh_token).toBeDefined();
    expect(secret).toBe(idp.clients.desktop.clientSecret);
  });

  it('a wrong password for a section without tokens is refused as a wrong password', async () => {
    await seed(await accountKey(PASSWORD), { tokens: false });
    const error = await refusal(
      manager().accessToken(desktop(), new Passphrase('not the password')),
    );
    expect(error).toMatchObject({ reason: 'bad-password' });
    expect((error as Error).message).toContain('client_secret_encrypted');
  });
});

describe('client_credentials with the secret encrypted in the config section', () => {
  it('gets an app-only token with the decrypted secret and stores it with the re-encrypted secret', async () => {
    const key = await accountKey(PASSWORD);
    const inConfig: StoredTokenFields = {
      token_salt: key.seals.salt,
      token_iterations: String(key.seals.iterations),
      client_secret_encrypted: fernetEncrypt(key.seals.bytes, idp.clients.service.clientSecret),
    };
    const subject = desktop({
      clientId: idp.clients.service.clientId,
      flow: 'client_credentials',
      scope: 'https://outlook.office365.com/.default',
      clientSecretEncrypted: inConfig.client_secret_encrypted!,
      tokensInConfig: inConfig,
    });
    expect(await manager().accessToken(subject, new Passphrase(PASSWORD))).toBeTruthy();
    expect(idp.tokenRequests.byGrantType.client_credentials).toBe(1);
    expect((await storedSecret()).secret).toBe(idp.clients.service.clientSecret);
  });
});

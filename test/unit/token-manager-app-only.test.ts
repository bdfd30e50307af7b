/**
 * The token manager for app-only accounts (`client_credentials`), against the real test identity
 * provider in-process and a real token store file: a token is asked for once and reused, and
 * after the mail server refused one, exactly one new token is asked for.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { LoginFailure } from '../../src/auth/types.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import type { TokenManager } from '../../src/tokens/token-manager.js';
import { testTokenManager } from '../support/token-manager.js';
import { startIdp, type Idp } from '../peers/idp.js';

const USER = 'scanner@example.com';
const PASSWORD = 'local password of the scanner';

let idp: Idp;
let dir: string;

beforeAll(async () => {
  idp = await startIdp({ defaultUser: USER });
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async (context) => {
  dir = await mkdtemp(join(tmpdir(), 'omp-app-only-'));
  idp.resetTokenRequests();
  context.onTestFinished(() => rm(dir, { recursive: true, force: true }));
});

function appOnly(): TokenSubject {
  const { service } = idp.clients;
  return {
    key: USER,
    loginName: USER,
    account: {
      name: USER,
      permissionUrl: '',
      tokenUrl: idp.urls.token,
      scope: 'https://outlook.office365.com/.default',
      redirectUri: '',
      clientId: service.clientId,
      clientSecret: service.clientSecret,
      flow: 'client_credentials',
      usePkce: false,
    },
  };
}

function manager(options: { deleteTokensOnWrongPassword?: boolean } = {}): TokenManager {
  return testTokenManager(new FileTokenStore(join(dir, 'tokens.ini')), options);
}

const requests = (): number => idp.tokenRequests.byGrantType.client_credentials ?? 0;

it('asks once, reuses the stored token, and after the server refused it asks exactly once more', async () => {
  const tokens = manager();
  const subject = appOnly();
  const first = await tokens.accessToken(subject, new Passphrase(PASSWORD));
  expect(await tokens.accessToken(subject, new Passphrase(PASSWORD))).toBe(first);
  expect(requests()).toBe(1);

  // The mail server refused the token: the next login gets a new one, and later logins use that.
  tokens.distrust(USER);
  const second = await tokens.accessToken(subject, new Passphrase(PASSWORD));
  expect(second).not.toBe(first);
  expect(await tokens.accessToken(subject, new Passphrase(PASSWORD))).toBe(second);
  expect(await tokens.accessToken(subject, new Passphrase(PASSWORD))).toBe(second);
  expect(requests()).toBe(2);
});

it('concurrent logins share one request', async () => {
  const tokens = manager();
  const all = await Promise.all(
    Array.from({ length: 5 }, () => tokens.accessToken(appOnly(), new Passphrase(PASSWORD))),
  );
  expect(new Set(all).size).toBe(1);
  expect(requests()).toBe(1);
});

it('never lets a wrong password replace the stored token, even with delete_account_token_on_password_error', async () => {
  // Nobody signs in for an app-only account: deleting its token on a wrong password and asking
  // for a new one would let any password in.
  const tokens = manager({ deleteTokensOnWrongPassword: true });
  const token = await tokens.accessToken(appOnly(), new Passphrase(PASSWORD));
  const stored = await readFile(join(dir, 'tokens.ini'), 'utf8');

  const refused = await tokens
    .accessToken(appOnly(), new Passphrase('a guess'))
    .catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(LoginFailure);
  expect(refused).toMatchObject({ reason: 'bad-password' });
  expect((refused as Error).message).toMatch(/a wrong password never replaces it/);
  expect(await readFile(join(dir, 'tokens.ini'), 'utf8')).toBe(stored);
  expect(requests()).toBe(1);
  expect(await tokens.accessToken(appOnly(), new Passphrase(PASSWORD))).toBe(token);
});

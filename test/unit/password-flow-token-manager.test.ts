/**
 * The token manager with `oauth2_flow = password` when logins race: a small token endpoint that
 * knows one right password (and answers slowly, so logins overlap) stands in for the identity
 * provider; the token store is a real file. The end-to-end conversation is in
 * test/e2e/password-flow.test.ts; this is what a mail client cannot easily make happen.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoginFailure } from '../../src/auth/types.js';
import type { AccountConfig, OAuthFlow } from '../../src/config/types.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { fernetEncrypt } from '../../src/tokens/vault/fernet.js';
import { accountKey, sealWith } from '../support/sealed-tokens.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import type { TokenManager } from '../../src/tokens/token-manager.js';
import { testTokenManager } from '../support/token-manager.js';

const USER = 'user@example.com';
const RIGHT = 'the right account password';
const WRONG = 'a wrong account password';

interface Endpoint {
  readonly url: string;
  /** grant_type of each request, in arrival order. */
  readonly grants: string[];
  /** Most requests the endpoint was answering at the same time. */
  maxConcurrent: number;
  close(): Promise<void>;
}

let dir: string;
let endpoint: Endpoint;
let issued = 0;

/** Accepts RIGHT (after 150 ms) and refuses anything else as Azure AD does; refresh tokens are refused. */
async function startEndpoint(): Promise<Endpoint> {
  let concurrent = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      state.grants.push(form.get('grant_type') ?? '');
      concurrent += 1;
      state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
      setTimeout(() => {
        concurrent -= 1;
        response.setHeader('content-type', 'application/json');
        if (form.get('grant_type') === 'password' && form.get('password') === RIGHT) {
          issued += 1;
          response.end(
            JSON.stringify({
              access_token: `access-${issued}`,
              refresh_token: `refresh-${issued}`,
              token_type: 'Bearer',
              expires_in: 3600,
            }),
          );
          return;
        }
        response.statusCode = 400;
        const refusal =
          form.get('grant_type') === 'password'
            ? {
                error: 'invalid_grant',
                error_description:
                  'AADSTS50126: Error validating credentials due to invalid username or password.',
                error_codes: [50126],
              }
            : {
                error: 'invalid_grant',
                error_description: 'AADSTS70000: The provided grant is invalid.',
                error_codes: [70000],
              };
        response.end(JSON.stringify(refusal));
      }, 150);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: Endpoint = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    grants: [],
    maxConcurrent: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return state;
}

beforeEach(async () => {
  issued = 0;
  dir = await mkdtemp(join(tmpdir(), 'omp-password-flow-'));
  endpoint = await startEndpoint();
});
afterEach(async () => {
  await endpoint.close();
  await rm(dir, { recursive: true, force: true });
});

function subject(flow: OAuthFlow = 'password'): TokenSubject {
  const account: AccountConfig = {
    name: USER,
    permissionUrl: '',
    tokenUrl: endpoint.url,
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    redirectUri: '',
    clientId: 'client',
    flow,
    usePkce: false,
  };
  return { key: USER, account, loginName: USER };
}

function manager(options: { deleteTokensOnWrongPassword?: boolean } = {}): {
  tokens: TokenManager;
  store: FileTokenStore;
} {
  const store = new FileTokenStore(join(dir, 'tokens.ini'));
  const tokens = testTokenManager(store, options);
  return { tokens, store };
}

async function refusalOf(login: Promise<string>): Promise<LoginFailure> {
  const err = await login.then(
    () => expect.fail('the login should have been refused'),
    (error: unknown) => error,
  );
  expect(err).toBeInstanceOf(LoginFailure);
  return err as LoginFailure;
}

describe('password-flow logins that overlap', () => {
  it('share one grant when they send the same password', async () => {
    const { tokens } = manager();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => tokens.accessToken(subject(), new Passphrase(RIGHT))),
    );
    expect(new Set(results)).toEqual(new Set(['access-1']));
    expect(endpoint.grants).toEqual(['password']);
  });

  it("never hand one password's token to a login with another: the provider judges each, one at a time", async () => {
    const { tokens } = manager();
    const [right, wrong] = await Promise.allSettled([
      tokens.accessToken(subject(), new Passphrase(RIGHT)),
      tokens.accessToken(subject(), new Passphrase(WRONG)),
    ]);
    expect(right).toEqual({ status: 'fulfilled', value: 'access-1' });
    expect(wrong.status).toBe('rejected');
    expect((wrong as PromiseRejectedResult).reason).toMatchObject({ reason: 'bad-password' });
    expect(endpoint.grants).toEqual(['password', 'password']);
    expect(endpoint.maxConcurrent).toBe(1);
  });

  it('leave the stored tokens alone when the provider refuses a password, even with delete_account_token_on_password_error', async () => {
    const { tokens, store } = manager({ deleteTokensOnWrongPassword: true });
    await tokens.accessToken(subject(), new Passphrase(RIGHT));
    const before = await store.read(USER);
    const refused = await refusalOf(tokens.accessToken(subject(), new Passphrase(WRONG)));
    expect(refused.reason).toBe('bad-password');
    expect(refused.message).toMatch(
      /^The identity provider refused the password for user@example\.com: AADSTS50126: /,
    );
    expect(await store.read(USER)).toEqual(before);
  });
});

describe('a password-flow account in the background', () => {
  it('stops refreshing when the refresh token is dead, and leaves new tokens to the next login', async () => {
    const { tokens, store } = manager();
    await store.write(
      USER,
      sealWith(await accountKey(RIGHT), {
        accessToken: 'old-access',
        accessTokenExpiry: Math.floor(Date.now() / 1000) + 3600,
        refreshToken: 'dead-refresh',
      }),
    );
    // A login makes the key known; the background refresh then finds the refresh token dead.
    expect(await tokens.accessToken(subject(), new Passphrase(RIGHT))).toBe('old-access');
    const refused = await tokens.refreshIfDue(subject(), true).then(
      () => expect.fail('the refresh should have failed'),
      (error: unknown) => error as LoginFailure,
    );
    expect(refused).toMatchObject({ reason: 'authorisation-needed' });
    expect(tokens.pending.get(USER)).toBeUndefined();
    expect(endpoint.grants).toEqual(['refresh_token']);
    expect(await tokens.accessToken(subject(), new Passphrase(RIGHT))).toBe('access-1');
  });
});

describe('a password-flow account whose client secret is stored encrypted', () => {
  it('answers a password that opens neither the tokens nor the secret as a config problem, asking nothing', async () => {
    const { tokens, store } = manager();
    const key = await accountKey(RIGHT);
    await store.write(USER, {
      ...sealWith(key, {
        accessToken: 'old-access',
        accessTokenExpiry: Math.floor(Date.now() / 1000) + 3600,
        refreshToken: 'old-refresh',
      }),
      client_secret_encrypted: fernetEncrypt(key.seals.bytes, 'the client secret'),
    });
    const refused = await refusalOf(tokens.accessToken(subject(), new Passphrase(WRONG)));
    expect(refused.reason).toBe('config');
    expect(refused.message).toContain('client_secret_encrypted');
    expect(endpoint.grants).toEqual([]);
  });
});

describe('a service_account account', () => {
  it('whose client_id is neither file nor key is refused as a configuration problem, with no request and nothing pending', async () => {
    const { tokens } = manager();
    const refused = await refusalOf(
      tokens.accessToken(subject('service_account'), new Passphrase(RIGHT)),
    );
    expect(refused.reason).toBe('config');
    expect(refused.message).toMatch(
      /client_id must be set to `file` or `key`\. Set client_id = file and client_secret to the path/,
    );
    expect(tokens.pending.get(USER)).toBeUndefined();
    await expect(tokens.authorize(subject('service_account'))).rejects.toMatchObject({
      kind: 'config',
      configKey: 'oauth2_flow',
    });
    expect(endpoint.grants).toEqual([]);
  });
});

/**
 * Two proxies sharing one token store, with a provider that keeps refresh tokens (answers a
 * refresh without a new refresh token, as Google does): the second proxy to take the account's
 * lock must see that the first one refreshed, although the refresh token is the same.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import type { TokenManager } from '../../src/tokens/token-manager.js';
import { testTokenManager } from '../support/token-manager.js';
import { accountKey, sealWith } from '../support/sealed-tokens.js';

const USER = 'kept.user@example.com';
const PASSWORD = 'the mail password';

let dir: string;
let url: string;
let refreshes: number;
let close: () => Promise<void>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-refresh-kept-'));
  refreshes = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      refreshes += 1;
      // Slow enough that both proxies ask while the first refresh is under way.
      setTimeout(() => {
        response.setHeader('content-type', 'application/json');
        response.end(
          JSON.stringify({
            access_token: `access-${refreshes}`,
            token_type: 'Bearer',
            expires_in: 3600,
          }),
        );
      }, 200);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
});
afterEach(async () => {
  await close();
  await rm(dir, { recursive: true, force: true });
});

const subject = (): TokenSubject => ({
  key: USER,
  loginName: USER,
  account: {
    name: USER,
    permissionUrl: url.replace('/token', '/authorize'),
    tokenUrl: url,
    scope: 'https://mail.google.com/',
    redirectUri: 'http://localhost/',
    clientId: 'client',
    flow: 'authorization_code',
    usePkce: true,
  },
});

function proxy(): TokenManager {
  return testTokenManager(new FileTokenStore(join(dir, 'tokens.ini')));
}

it('two proxies with an expired token make one refresh between them, and both use it', async () => {
  await new FileTokenStore(join(dir, 'tokens.ini')).write(
    USER,
    sealWith(await accountKey(PASSWORD), {
      accessToken: 'expired-access',
      accessTokenExpiry: Math.floor(Date.now() / 1000) - 60,
      refreshToken: 'the-kept-refresh-token',
    }),
  );
  const [a, b] = [proxy(), proxy()];
  const [fromA, fromB] = await Promise.all([
    a.accessToken(subject(), new Passphrase(PASSWORD)),
    b.accessToken(subject(), new Passphrase(PASSWORD)),
  ]);
  expect(refreshes).toBe(1);
  expect(fromA).toBe('access-1');
  expect(fromB).toBe('access-1');
  a.close();
  b.close();
});

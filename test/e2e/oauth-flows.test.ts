/**
 * Every flow of the oauth part against the test identity provider (oidc-provider shaped like
 * Microsoft's v2 endpoints): real HTTP, real codes, real rotation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountConfig } from '../../src/config/types.js';
import {
  clientCredentials,
  completeAuthorization,
  OAuthError,
  pollDeviceAuthorization,
  refresh,
  startAuthorization,
  startDeviceAuthorization,
  type TokenSet,
} from '../../src/oauth/index.js';
import { OFFICE365_TEST_SCOPE, startIdp, TEST_REDIRECT_URI, type Idp } from '../peers/idp.js';
import { introspect } from '../peers/introspect.js';

const USER = 'alice@example.com';

let idp: Idp;

beforeAll(async () => {
  idp = await startIdp();
});

afterAll(async () => {
  await idp?.stop();
});

function account(overrides: Partial<AccountConfig> = {}): AccountConfig {
  return {
    name: USER,
    permissionUrl: idp.urls.authorize,
    tokenUrl: idp.urls.token,
    scope: OFFICE365_TEST_SCOPE,
    redirectUri: TEST_REDIRECT_URI,
    clientId: idp.clientId,
    flow: 'authorization_code',
    usePkce: true,
    ...overrides,
  };
}

function failure(promise: Promise<unknown>): Promise<OAuthError> {
  return promise.then(
    () => expect.fail('expected an OAuthError'),
    (err: unknown) => {
      expect(err).toBeInstanceOf(OAuthError);
      return err as OAuthError;
    },
  );
}

/** Signs in through the code flow, pasting the redirect the way `paste` mangles it. */
async function signIn(
  paste: (redirect: string) => string = (redirect) => redirect,
): Promise<TokenSet> {
  const pending = await startAuthorization(account());
  const redirect = await idp.browser(pending.url);
  return completeAuthorization(account(), pending, paste(redirect));
}

describe('authorization code flow with a pasted redirect', () => {
  it('asks for a PKCE-protected code for the account, and redeems the pasted redirect', async () => {
    const pending = await startAuthorization(account());
    const link = new URL(pending.url);
    expect(`${link.origin}${link.pathname}`).toBe(idp.urls.authorize);
    expect(Object.fromEntries(link.searchParams)).toMatchObject({
      client_id: idp.clientId,
      response_type: 'code',
      redirect_uri: TEST_REDIRECT_URI,
      scope: OFFICE365_TEST_SCOPE,
      state: pending.state,
      code_challenge_method: 'S256',
      login_hint: USER,
    });
    expect(link.searchParams.get('scope')).not.toMatch(/\bopenid\b/);

    const redirect = await idp.browser(pending.url);
    expect(redirect).toMatch(/^https:\/\/localhost\/?\?code=.*&session_state=/);
    // What a terminal user pastes: quoted, wrapped at 60 columns, with the sentence's full stop.
    const wrapped = redirect.match(/.{1,60}/g)?.join('\n') ?? redirect;
    const before = Math.floor(Date.now() / 1000);
    const tokens = await completeAuthorization(account(), pending, `"${wrapped}".\n`);

    expect(tokens.refreshToken).toEqual(expect.any(String));
    expect(tokens.expiresAt - before).toBeGreaterThanOrEqual(3599);
    expect(tokens.expiresAt - before).toBeLessThanOrEqual(3601);
    expect(await introspect(idp, tokens.accessToken)).toMatchObject({ active: true, sub: USER });
  });

  it('asks for the paste again when the redirect belongs to an older link', async () => {
    const older = await startAuthorization(account());
    const current = await startAuthorization(account());
    const olderRedirect = await idp.browser(older.url);
    const error = await failure(completeAuthorization(account(), current, olderRedirect));
    expect(error).toMatchObject({ kind: 'paste', code: 'state_mismatch' });
  });

  it('asks for a new paste when the same code is pasted twice', async () => {
    const pending = await startAuthorization(account());
    const redirect = await idp.browser(pending.url);
    await completeAuthorization(account(), pending, redirect);
    const error = await failure(completeAuthorization(account(), pending, redirect));
    expect(error).toMatchObject({ kind: 'paste', code: 'invalid_grant', aadsts: 54005 });
    expect(error.hint).toMatch(/already used.*sign-in link again/);
  });

  it('uses the login name as the hint for catch-all accounts', async () => {
    const pending = await startAuthorization(account({ name: '@example.com' }), {
      loginHint: 'bob@example.com',
    });
    expect(new URL(pending.url).searchParams.get('login_hint')).toBe('bob@example.com');
    const catchAll = await startAuthorization(account({ name: '@example.com' }));
    expect(new URL(catchAll.url).searchParams.has('login_hint')).toBe(false);
  });
});

describe('refresh', () => {
  it('rotates the refresh token, and the old one is then refused as reauthorise', async () => {
    const first = await signIn();
    const original = first.refreshToken ?? expect.fail('no refresh token issued');

    const refreshed = await refresh(account(), original);
    expect(refreshed.refreshTokenKept).toBe(false);
    expect(refreshed.refreshToken).toEqual(expect.any(String));
    expect(refreshed.refreshToken).not.toBe(original);
    expect(refreshed.accessToken).not.toBe(first.accessToken);
    expect(await introspect(idp, refreshed.accessToken)).toMatchObject({ active: true, sub: USER });

    const error = await failure(refresh(account(), original));
    expect(error).toMatchObject({ kind: 'reauthorise', code: 'invalid_grant', status: 400 });
    expect(error.aadsts).toEqual(expect.any(Number));
    expect(error.message).not.toContain(original);
  });

  it('keeps the refresh token usable through transient provider failures', async () => {
    const { refreshToken } = await signIn();
    let current = refreshToken ?? expect.fail('no refresh token issued');
    const faults = [
      ['503', 'http_503'],
      ['html500', 'http_500'],
      ['garbage', 'bad_response'],
      ['timeout', 'timeout'],
    ] as const;
    for (const [fault, code] of faults) {
      idp.failNextToken(fault);
      const error = await failure(refresh(account(), current, { requestTimeoutMs: 500 }));
      expect(error, fault).toMatchObject({ kind: 'transient', code });
      const tokens = await refresh(account(), current);
      current = tokens.refreshToken ?? expect.fail('no refresh token after recovery');
    }
  });

  it('reports an injected AADSTS70000 as reauthorise', async () => {
    const { refreshToken } = await signIn();
    idp.failNextToken('invalid_grant');
    const error = await failure(refresh(account(), refreshToken ?? ''));
    expect(error).toMatchObject({ kind: 'reauthorise', code: 'invalid_grant', aadsts: 70000 });
  });

  it('reports an unreachable identity provider as transient', async () => {
    await idp.refuse();
    try {
      const error = await failure(refresh(account(), 'any-refresh-token'));
      expect(error).toMatchObject({ kind: 'transient', code: 'network' });
    } finally {
      await idp.resume();
    }
  });
});

describe('device flow', () => {
  it('gets tokens once the user approves the code', async () => {
    // permission_url still names the authorize endpoint: the device endpoint is derived from token_url.
    const device = account({ flow: 'device' });
    const started = await startDeviceAuthorization(device);
    expect(started).toMatchObject({
      userCode: expect.any(String),
      interval: 5,
      verificationUri: expect.any(String),
    });
    expect(started.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(started.message).toContain(started.userCode);

    const polling = pollDeviceAuthorization(started.handle);
    await idp.approveDevice(started.userCode, USER);
    const tokens = await polling;
    expect(tokens.refreshToken).toEqual(expect.any(String));
    expect(await introspect(idp, tokens.accessToken)).toMatchObject({ active: true, sub: USER });
    expect(
      idp.tokenRequests.byGrantType['urn:ietf:params:oauth:grant-type:device_code'],
    ).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('client credentials', () => {
  it("gets an app-only token with the service client's secret", async () => {
    const service = account({
      flow: 'client_credentials',
      clientId: idp.clients.service.clientId,
      clientSecret: idp.clients.service.clientSecret,
      scope: 'https://outlook.office365.com/.default',
    });
    const tokens = await clientCredentials(service);
    expect(tokens.refreshToken).toBeUndefined();
    expect(await introspect(idp, tokens.accessToken)).toMatchObject({ active: true });
  });

  it('reports a wrong secret as a config error naming client_secret', async () => {
    const service = account({
      flow: 'client_credentials',
      clientId: idp.clients.service.clientId,
      clientSecret: 'not-the-secret',
      scope: 'https://outlook.office365.com/.default',
    });
    const error = await failure(clientCredentials(service));
    expect(error).toMatchObject({
      kind: 'config',
      code: 'invalid_client',
      configKey: 'client_secret',
    });
    expect(error.message).not.toContain('not-the-secret');
  });
});

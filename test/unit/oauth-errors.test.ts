/**
 * Error classification fed with the errors openid-client really throws: each test points the
 * oauth part at a small node:http server that answers the way a failing identity provider does.
 */
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { describe, expect, it } from 'vitest';
import { loginFailureFromOAuth } from '../../src/auth/oauth-login-failure.js';
import type { AccountConfig } from '../../src/config/types.js';
import {
  AADSTS_ADVICE,
  classifyOAuthErrorResponse,
  classifyOAuthFailure,
  clientCredentials,
  completeAuthorization,
  createProviderClient,
  deviceAuthorizationEndpoint,
  explainOAuthFailure,
  OAuthError,
  pollDeviceAuthorization,
  refresh,
  startDeviceAuthorization,
  type OAuthErrorKind,
} from '../../src/oauth/index.js';
import {
  json,
  scriptedProvider,
  type Answer,
  type ScriptedProvider,
} from '../support/scripted-provider.js';

const REFRESH_TOKEN = `rt-${randomBytes(48).toString('base64url')}`;
const CLIENT_SECRET = `secret-${randomBytes(24).toString('base64url')}`;
const TOKEN_PATH = '/common/oauth2/v2.0/token';
const DEVICE_PATH = '/common/oauth2/v2.0/devicecode';

function raw(status: number, contentType: string, body: string): Answer {
  return (_request, _form, response) => {
    response.writeHead(status, { 'content-type': contentType });
    response.end(body);
  };
}

/** An Azure AD error body, trace lines and all. */
function azure(error: string, aadsts: number, text: string): Record<string, unknown> {
  return {
    error,
    error_description: `AADSTS${aadsts}: ${text}\r\nTrace ID: 8f1c7a52-2f3e-4c8e-9f3a-1b2c3d4e5f60\r\nCorrelation ID: 0b6f0d2e-9a4c-4f5e-8d7c-6b5a4f3e2d1c\r\nTimestamp: 2026-01-15 10:21:07Z`,
    error_codes: [aadsts],
    timestamp: '2026-01-15 10:21:07Z',
    trace_id: '8f1c7a52-2f3e-4c8e-9f3a-1b2c3d4e5f60',
    correlation_id: '0b6f0d2e-9a4c-4f5e-8d7c-6b5a4f3e2d1c',
  };
}

function account(base: string, overrides: Partial<AccountConfig> = {}): AccountConfig {
  return {
    name: 'user@example.com',
    permissionUrl: `${base}/common/oauth2/v2.0/authorize`,
    tokenUrl: `${base}${TOKEN_PATH}`,
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    redirectUri: 'https://localhost',
    clientId: '9e5f94bc-e8a4-4e73-b8be-63364c29d753',
    flow: 'authorization_code',
    usePkce: true,
    ...overrides,
  };
}

/** What openid-client itself throws for a refresh against `provider`. */
async function rawRefreshFailure(
  provider: ScriptedProvider,
  overrides: Partial<AccountConfig> = {},
): Promise<unknown> {
  const config = createProviderClient(account(provider.base, overrides), { requestTimeoutMs: 300 });
  return client.refreshTokenGrant(config, REFRESH_TOKEN).then(
    () => expect.fail('the refresh should have failed'),
    (err: unknown) => err,
  );
}

async function refreshFailure(
  base: string,
  overrides: Partial<AccountConfig> = {},
): Promise<OAuthError> {
  return refresh(account(base, overrides), REFRESH_TOKEN, { requestTimeoutMs: 300 }).then(
    () => expect.fail('the refresh should have failed'),
    (err: unknown) => {
      expect(err).toBeInstanceOf(OAuthError);
      return err as OAuthError;
    },
  );
}

function expectNoSecrets(error: OAuthError): void {
  const shown = [
    error.message,
    error.hint,
    error.description ?? '',
    String(error),
    JSON.stringify(error),
  ].join('\n');
  expect(shown).not.toContain(REFRESH_TOKEN);
  expect(shown).not.toContain(CLIENT_SECRET);
}

describe('token endpoint OAuth errors are classified on `error`, with AADSTS hints', () => {
  const cases: ReadonlyArray<
    readonly [string, number, number, OAuthErrorKind, RegExp, string | undefined]
  > = [
    ['invalid_grant', 400, 70000, 'reauthorise', /no longer accepts/, undefined],
    ['invalid_grant', 400, 70008, 'reauthorise', /90 days/, undefined],
    ['invalid_grant', 400, 700082, 'reauthorise', /unused for 90 days/, undefined],
    ['invalid_grant', 400, 50173, 'reauthorise', /password change/, undefined],
    ['invalid_grant', 400, 70043, 'reauthorise', /Conditional Access/, undefined],
    ['interaction_required', 400, 50076, 'reauthorise', /multi-factor/, undefined],
    ['interaction_required', 400, 50079, 'reauthorise', /register for multi-factor/, undefined],
    ['consent_required', 400, 65001, 'reauthorise', /administrator must grant consent/, undefined],
    ['invalid_client', 401, 7000218, 'config', /expects a client secret/, 'client_secret'],
    ['invalid_client', 401, 700025, 'config', /remove client_secret/, 'client_secret'],
    ['invalid_client', 401, 7000215, 'config', /Value \(not its Secret ID\)/, 'client_secret'],
    ['invalid_client', 401, 7000222, 'config', /create a new one/, 'client_secret'],
    [
      'invalid_client',
      401,
      700027,
      'config',
      /Upload the certificate in jwt_certificate_path/,
      'jwt_certificate_path',
    ],
    ['invalid_client', 401, 700024, 'config', /clock is off/, undefined],
    ['unauthorized_client', 400, 7000112, 'config', /disabled/, 'client_id'],
    ['unauthorized_client', 400, 700016, 'config', /does not know this client_id/, 'client_id'],
    ['invalid_request', 400, 900144, 'config', /set oauth2_scope/, 'oauth2_scope'],
    ['invalid_request', 400, 50011, 'config', /redirect_uri must be exactly/, 'redirect_uri'],
    ['invalid_scope', 400, 70011, 'config', /fix oauth2_scope/, 'oauth2_scope'],
    ['temporarily_unavailable', 400, 50000, 'transient', /unavailable/, undefined],
    ['server_error', 400, 50000, 'transient', /unavailable/, undefined],
  ];

  it.each(cases)(
    '%s (HTTP %i, AADSTS%i) is %s',
    async (error, status, aadsts, kind, hint, configKey) => {
      const provider = await scriptedProvider(
        json(status, azure(error, aadsts, 'Something failed.')),
      );
      const thrown = await rawRefreshFailure(provider);
      expect(thrown).toBeInstanceOf(client.ResponseBodyError);

      const classified = classifyOAuthFailure(thrown, 'refresh');
      expect(classified).toMatchObject({ kind, code: error, aadsts, status });
      expect(classified.hint).toMatch(hint);
      expect(classified.configKey).toBe(configKey);
      expect(classified.description).toBe(`AADSTS${aadsts}: Something failed.`);

      const viaRefresh = await refreshFailure(provider.base);
      expect(viaRefresh).toMatchObject({ kind, code: error, aadsts });
    },
  );

  it('reads the AADSTS number from the description when error_codes is missing', async () => {
    const provider = await scriptedProvider(
      json(400, {
        error: 'invalid_grant',
        error_description: 'AADSTS700082: The refresh token has expired due to inactivity.',
      }),
    );
    const classified = classifyOAuthFailure(await rawRefreshFailure(provider), 'refresh');
    expect(classified).toMatchObject({ kind: 'reauthorise', aadsts: 700082 });
  });

  it('lets the `error` code decide the kind even when the AADSTS number belongs elsewhere', async () => {
    // invalid_client with a "reauthorise" AADSTS number: still a config problem, generic hint.
    const provider = await scriptedProvider(
      json(401, azure('invalid_client', 70008, 'Odd combination.')),
    );
    const classified = classifyOAuthFailure(await rawRefreshFailure(provider), 'refresh');
    expect(classified).toMatchObject({
      kind: 'config',
      code: 'invalid_client',
      aadsts: 70008,
      configKey: 'client_secret',
    });
    expect(classified.hint).toMatch(/client_id and client_secret/);
  });

  it('treats Google-style errors without AADSTS numbers by their code', async () => {
    const provider = await scriptedProvider(
      json(400, {
        error: 'invalid_grant',
        error_description: 'Token has been expired or revoked.',
      }),
    );
    const classified = await refreshFailure(provider.base);
    expect(classified).toMatchObject({
      kind: 'reauthorise',
      code: 'invalid_grant',
      description: 'Token has been expired or revoked.',
    });
    expect(classified.aadsts).toBeUndefined();
  });

  it('treats HTTP 429 with an OAuth body as transient', async () => {
    const provider = await scriptedProvider(
      json(
        429,
        { error: 'invalid_request', error_description: 'Too many requests' },
        { 'retry-after': '30' },
      ),
    );
    expect(classifyOAuthFailure(await rawRefreshFailure(provider), 'refresh')).toMatchObject({
      kind: 'transient',
      status: 429,
    });
  });

  it('classifies an unknown error code as config, which never loops', async () => {
    const provider = await scriptedProvider(json(400, { error: 'org_internal' }));
    const classified = await refreshFailure(provider.base);
    expect(classified).toMatchObject({ kind: 'config', code: 'org_internal' });
    expect(classified.hint).toContain('org_internal');
  });
});

describe('invalid_client behind a WWW-Authenticate challenge', () => {
  const challenge = json(401, azure('invalid_client', 7000215, 'Invalid client secret provided.'), {
    'www-authenticate': 'Basic realm="login.microsoftonline.com"',
  });

  it('is a config error from its status alone, synchronously', async () => {
    const provider = await scriptedProvider(challenge);
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    expect(classifyOAuthFailure(thrown, 'refresh')).toMatchObject({
      kind: 'config',
      code: 'http_401',
      configKey: 'client_secret',
    });
  });

  it('gets its OAuth error and AADSTS hint from the body when explained', async () => {
    const provider = await scriptedProvider(challenge);
    const explained = await explainOAuthFailure(await rawRefreshFailure(provider), 'refresh');
    expect(explained).toMatchObject({
      kind: 'config',
      code: 'invalid_client',
      aadsts: 7000215,
      configKey: 'client_secret',
    });
    expect((await refreshFailure(provider.base)).code).toBe('invalid_client');
  });

  it('uses an error parameter of the challenge itself', async () => {
    const provider = await scriptedProvider(raw(401, 'text/plain', 'no'));
    const withParameter = await scriptedProvider((_request, _form, response) => {
      response.writeHead(401, {
        'www-authenticate':
          'Bearer error="invalid_client", error_description="AADSTS700016: Application not found"',
      });
      response.end();
    });
    expect(await refreshFailure(withParameter.base)).toMatchObject({
      kind: 'config',
      code: 'invalid_client',
      aadsts: 700016,
      configKey: 'client_id',
    });
    expect(await refreshFailure(provider.base)).toMatchObject({ kind: 'config', code: 'http_401' });
  });
});

describe('failures without an OAuth error body', () => {
  it('treats a 503 HTML page as transient http_503', async () => {
    const provider = await scriptedProvider(
      raw(503, 'text/html', '<html><body><h1>Service Unavailable</h1></body></html>'),
    );
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toBeInstanceOf(client.ClientError);
    expect(classifyOAuthFailure(thrown, 'refresh')).toMatchObject({
      kind: 'transient',
      code: 'http_503',
      status: 503,
    });
  });

  it('treats a 500 with a JSON body that is not an OAuth error as transient http_500', async () => {
    const provider = await scriptedProvider(json(500, { message: 'Internal error' }));
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'transient',
      code: 'http_500',
    });
  });

  it('treats a 400 HTML page (a proxy in the way) as a transient bad response', async () => {
    const provider = await scriptedProvider(raw(400, 'text/html', '<html>Bad Request</html>'));
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'transient',
      code: 'bad_response',
      status: 400,
    });
  });

  it('treats truncated JSON as a transient bad response', async () => {
    const provider = await scriptedProvider(
      raw(200, 'application/json', '{"token_type":"Bearer","expires_in":36'),
    );
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toMatchObject({ code: 'OAUTH_PARSE_ERROR' });
    expect(classifyOAuthFailure(thrown, 'refresh')).toMatchObject({
      kind: 'transient',
      code: 'bad_response',
    });
  });

  it('treats a 200 login page (captive portal) as a transient bad response', async () => {
    const provider = await scriptedProvider(
      raw(200, 'text/html', '<html><form>Hotel Wi-Fi login</form></html>'),
    );
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'transient',
      code: 'bad_response',
      status: 200,
    });
  });

  it('treats a 404 as a config error naming token_url', async () => {
    const provider = await scriptedProvider(raw(404, 'text/html', 'Not Found'));
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'config',
      code: 'http_404',
      configKey: 'token_url',
    });
  });

  it('treats a server that never answers as a transient timeout', async () => {
    const provider = await scriptedProvider(() => undefined);
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toMatchObject({ code: 'OAUTH_TIMEOUT' });
    expect(classifyOAuthFailure(thrown, 'refresh')).toMatchObject({
      kind: 'transient',
      code: 'timeout',
    });
  });

  it('treats a server that stops mid-body as a transient timeout', async () => {
    const provider = await scriptedProvider((_request, _form, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"access_token":"');
    });
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'transient',
      code: 'timeout',
    });
  });

  it('treats a refused connection as a transient network error', async () => {
    const provider = await scriptedProvider(() => undefined);
    await provider.close();
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toBeInstanceOf(TypeError);
    const classified = classifyOAuthFailure(thrown, 'refresh');
    expect(classified).toMatchObject({ kind: 'transient', code: 'network' });
    expect(classified.message).toContain('ECONNREFUSED');
  });

  it('treats a dropped connection as a transient network error', async () => {
    const provider = await scriptedProvider((request) => request.socket.destroy());
    expect(await refreshFailure(provider.base)).toMatchObject({
      kind: 'transient',
      code: 'network',
    });
  });

  it('treats an unresolvable host as a transient DNS error', async () => {
    const classified = await refreshFailure('https://login.invalid', {
      permissionUrl: 'https://login.invalid/authorize',
    });
    expect(classified).toMatchObject({ kind: 'transient', code: 'dns' });
  });

  it('treats a 200 answer without an access token as a transient bad response, hiding its tokens', async () => {
    const provider = await scriptedProvider(
      json(200, { refresh_token: REFRESH_TOKEN, token_type: 'Bearer' }),
    );
    const thrown = await rawRefreshFailure(provider);
    expect(thrown).toMatchObject({ code: 'OAUTH_INVALID_RESPONSE' });
    const classified = classifyOAuthFailure(thrown, 'refresh');
    expect(classified).toMatchObject({ kind: 'transient', code: 'bad_response' });
    expectNoSecrets(classified);
    expect(classified.cause).toBeUndefined();
  });
});

describe('messages never carry secrets', () => {
  it('blanks a refresh token the provider echoes in its description', async () => {
    const provider = await scriptedProvider(
      json(400, azure('invalid_grant', 70000, `The refresh token ${REFRESH_TOKEN} is not valid.`)),
    );
    const classified = await refreshFailure(provider.base, { clientSecret: CLIENT_SECRET });
    expect(classified.kind).toBe('reauthorise');
    expect(classified.description).toContain('[redacted]');
    expectNoSecrets(classified);
  });

  it('keeps the client secret out of an invalid_client error', async () => {
    const provider = await scriptedProvider(
      json(401, azure('invalid_client', 7000215, 'Invalid client secret provided.')),
    );
    const classified = await refreshFailure(provider.base, { clientSecret: CLIENT_SECRET });
    expect(provider.forms[0]?.get('client_secret')).toBe(CLIENT_SECRET);
    expectNoSecrets(classified);
  });
});

describe('AADSTS advice', () => {
  it('gives every AADSTS number a kind, and its hint wherever a failure is of that kind', () => {
    for (const [aadsts, advice] of AADSTS_ADVICE) {
      expect(advice.kind, `AADSTS${aadsts}`).toMatch(
        /^(transient|reauthorise|config|paste|credentials)$/,
      );
    }
    // A refresh refused because an external sign-in step is missing: the refresh token is dead,
    // and the hint says why rather than the generic "sign in interactively".
    const refused = classifyOAuthErrorResponse(
      {
        error: 'interaction_required',
        errorDescription: 'AADSTS50158: External security challenge not satisfied.',
        status: 400,
      },
      'refresh',
    );
    expect(refused.kind).toBe('reauthorise');
    expect(refused.hint).toMatch(/extra sign-in step/);
  });

  it('lets the AADSTS kind decide an invalid_request only where it is config or paste', () => {
    const fields = (aadsts: number) => ({
      error: 'invalid_request',
      errorCodes: [aadsts],
      status: 400,
    });
    expect(classifyOAuthErrorResponse(fields(9002313), 'refresh').kind).toBe('paste');
    expect(classifyOAuthErrorResponse(fields(900144), 'authorization_code').kind).toBe('config');
    expect(classifyOAuthErrorResponse(fields(70000), 'authorization_code').kind).toBe('paste');
    expect(classifyOAuthErrorResponse(fields(70000), 'refresh').kind).toBe('config');
  });
});

describe('an OAuth failure as a login failure', () => {
  it('maps each kind to the refusal a mail client should get, with what happened and what to do', async () => {
    const provider = await scriptedProvider(
      json(400, azure('invalid_grant', 700082, `The refresh token ${REFRESH_TOKEN} has expired.`)),
    );
    const failure = loginFailureFromOAuth(
      await refreshFailure(provider.base),
      'Cannot refresh the OAuth2 token for user@example.com',
    );
    expect(failure.reason).toBe('authorisation-needed');
    expect(failure.temporary).toBe(true);
    expect(failure.message).toMatch(
      /^Cannot refresh the OAuth2 token for user@example.com: Refreshing the access token failed: invalid_grant .*unused for 90 days/,
    );
    expect(failure.message).not.toContain(REFRESH_TOKEN);

    const reasons = Object.fromEntries(
      (['transient', 'reauthorise', 'config', 'paste', 'credentials'] as const).map((kind) => [
        kind,
        loginFailureFromOAuth(new OAuthError('x', { kind, code: 'c', hint: 'h' }), 'y').reason,
      ]),
    );
    expect(reasons).toEqual({
      transient: 'temporary',
      reauthorise: 'authorisation-needed',
      config: 'config',
      paste: 'authorisation-needed',
      credentials: 'bad-password',
    });
  });
});

describe('code redemption errors ask for a new paste', () => {
  const pending = { state: 'the-state', codeVerifier: 'v'.repeat(43) };
  const pasted = 'https://localhost/?code=0.AXEA-code&state=the-state&session_state=abc';

  it.each([
    ['invalid_grant', 54005, /already used/],
    ['invalid_grant', 70000, /codes expire within minutes/],
    ['invalid_request', 9002313, /cut short/],
  ] as const)('%s AADSTS%i is a paste problem', async (error, aadsts, hint) => {
    const provider = await scriptedProvider(json(400, azure(error, aadsts, 'Code problem.')));
    const failure = await completeAuthorization(account(provider.base), pending, pasted).catch(
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ kind: 'paste', code: error, aadsts });
    expect((failure as OAuthError).hint).toMatch(hint);
  });

  it('sends the configured redirect_uri, not the pasted address', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 3600 }),
    );
    await completeAuthorization(
      account(provider.base),
      pending,
      `"https://login.microsoftonline.com/common/wrongplace?code=c0de&state=the-state".`,
    );
    expect(Object.fromEntries(provider.forms[0] ?? [])).toEqual({
      grant_type: 'authorization_code',
      code: 'c0de',
      redirect_uri: 'https://localhost',
      code_verifier: pending.codeVerifier,
      client_id: '9e5f94bc-e8a4-4e73-b8be-63364c29d753',
    });
  });

  it('reports an error in the pasted address by its own classification', async () => {
    const provider = await scriptedProvider(json(500, {}));
    const cancelled = await completeAuthorization(
      account(provider.base),
      pending,
      'https://localhost/?error=access_denied&error_description=AADSTS65004%3a+User+declined&state=the-state',
    ).catch((err: unknown) => err);
    expect(cancelled).toMatchObject({ kind: 'reauthorise', code: 'access_denied' });
    const mismatch = await completeAuthorization(
      account(provider.base),
      pending,
      'https://localhost/?error=invalid_request&error_description=AADSTS50011%3a+The+redirect+URI+does+not+match&state=the-state',
    ).catch((err: unknown) => err);
    expect(mismatch).toMatchObject({ kind: 'config', aadsts: 50011, configKey: 'redirect_uri' });
    const busy = await completeAuthorization(
      account(provider.base),
      pending,
      'https://localhost/?error=temporarily_unavailable&state=the-state',
    ).catch((err: unknown) => err);
    expect(busy).toMatchObject({ kind: 'paste', code: 'temporarily_unavailable' });
    expect(provider.forms).toHaveLength(0);
  });

  it('reports an unusable paste without calling the provider', async () => {
    const provider = await scriptedProvider(json(500, {}));
    const noCode = await completeAuthorization(
      account(provider.base),
      pending,
      'https://localhost/',
    ).catch((err: unknown) => err);
    expect(noCode).toMatchObject({ kind: 'paste', code: 'no_code' });
    const older = await completeAuthorization(
      account(provider.base),
      pending,
      'https://localhost/?code=x&state=older',
    ).catch((err: unknown) => err);
    expect(older).toMatchObject({ kind: 'paste', code: 'state_mismatch' });
    const notUrl = await completeAuthorization(account(provider.base), pending, 'hello').catch(
      (err: unknown) => err,
    );
    expect(notUrl).toMatchObject({ kind: 'paste', code: 'not_a_url' });
    expect(provider.forms).toHaveLength(0);
  });
});

describe('the provider client', () => {
  it('refuses plain http to a non-loopback host, naming the key', () => {
    expect(() => createProviderClient(account('http://login.example.com'))).toThrow(
      expect.objectContaining({ kind: 'config', configKey: 'permission_url' }),
    );
    expect(() =>
      createProviderClient(
        account('https://login.example.com', { tokenUrl: 'http://login.example.com/token' }),
      ),
    ).toThrow(expect.objectContaining({ kind: 'config', configKey: 'token_url' }));
    expect(() =>
      createProviderClient(account('https://login.example.com', { clientId: '' })),
    ).toThrow(expect.objectContaining({ kind: 'config', configKey: 'client_id' }));
  });

  it("derives Microsoft's device endpoint from token_url when permission_url is the authorize endpoint", () => {
    const microsoft = account('https://login.microsoftonline.com', { flow: 'device' });
    expect(deviceAuthorizationEndpoint(microsoft)).toBe(
      'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    );
    const explicit = account('https://login.microsoftonline.com', {
      flow: 'device',
      permissionUrl:
        'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode',
    });
    expect(deviceAuthorizationEndpoint(explicit)).toBe(explicit.permissionUrl);
  });

  it('sends a client secret in the body and a public client only its client_id', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 60, refresh_token: 'rt2' }),
    );
    await refresh(account(provider.base, { clientSecret: CLIENT_SECRET }), REFRESH_TOKEN);
    await refresh(account(provider.base), REFRESH_TOKEN);
    expect(provider.forms[0]?.get('client_secret')).toBe(CLIENT_SECRET);
    expect(provider.forms[1]?.has('client_secret')).toBe(false);
    expect(provider.forms[1]?.get('client_id')).toBe('9e5f94bc-e8a4-4e73-b8be-63364c29d753');
    expect(provider.forms[1]?.has('scope')).toBe(false);
  });

  it('ignores an id_token instead of validating it, and defaults a missing token_type', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', expires_in: 60, id_token: 'not.a.jwt' }),
    );
    const before = Math.floor(Date.now() / 1000);
    const tokens = await refresh(account(provider.base), REFRESH_TOKEN);
    expect(tokens).toEqual({
      accessToken: 'at',
      expiresAt: expect.any(Number),
      refreshToken: REFRESH_TOKEN,
      refreshTokenKept: true,
    });
    expect(tokens.expiresAt - before).toBeGreaterThanOrEqual(59);
    expect(tokens.expiresAt - before).toBeLessThanOrEqual(61);
  });

  it('assumes an hour when expires_in is missing, and passes on a rotated refresh token', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', token_type: 'Bearer', refresh_token: 'rotated' }),
    );
    const before = Math.floor(Date.now() / 1000);
    const tokens = await refresh(account(provider.base), REFRESH_TOKEN);
    expect(tokens).toMatchObject({ refreshToken: 'rotated', refreshTokenKept: false });
    expect(tokens.expiresAt - before).toBeGreaterThanOrEqual(3599);
    expect(tokens.expiresAt - before).toBeLessThanOrEqual(3601);
  });

  it('gets client credentials tokens with the configured scope', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'app-token', token_type: 'Bearer', expires_in: 3599 }),
    );
    const tokens = await clientCredentials(
      account(provider.base, {
        flow: 'client_credentials',
        clientSecret: CLIENT_SECRET,
        scope: 'https://outlook.office365.com/.default',
      }),
    );
    expect(tokens.accessToken).toBe('app-token');
    expect(tokens.refreshToken).toBeUndefined();
    expect(Object.fromEntries(provider.forms[0] ?? [])).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'https://outlook.office365.com/.default',
      client_secret: CLIENT_SECRET,
    });
  });
});

describe('device polling against a scripted provider', () => {
  /** A device endpoint plus a token endpoint that answers polls from `polls` in order. */
  async function deviceProvider(
    device: Record<string, unknown>,
    polls: Array<[number, Record<string, unknown>]>,
  ) {
    const pollTimes: number[] = [];
    const provider = await scriptedProvider((request, _form, response) => {
      if (request.url === DEVICE_PATH) {
        json(200, {
          device_code: 'dc',
          user_code: 'ABCD-EFGH',
          verification_uri: 'https://microsoft.com/devicelogin',
          expires_in: 900,
          ...device,
        })(request, _form, response);
        return;
      }
      pollTimes.push(Date.now());
      const [status, body] = polls.shift() ?? [400, { error: 'authorization_pending' }];
      json(status, body)(request, _form, response);
    });
    return {
      provider,
      pollTimes,
      device: account(provider.base, {
        flow: 'device',
        permissionUrl: `${provider.base}${DEVICE_PATH}`,
      }),
    };
  }

  it('slows down by 5 seconds when asked', async () => {
    const { device, pollTimes } = await deviceProvider({ interval: 0.05 }, [
      [400, { error: 'authorization_pending' }],
      [400, { error: 'slow_down' }],
      [200, { access_token: 'at', token_type: 'Bearer', expires_in: 3600, refresh_token: 'rt' }],
    ]);
    const started = await startDeviceAuthorization(device);
    expect(started).toMatchObject({
      userCode: 'ABCD-EFGH',
      verificationUri: 'https://microsoft.com/devicelogin',
      interval: 0.05,
    });
    const tokens = await pollDeviceAuthorization(started.handle);
    expect(tokens).toMatchObject({ accessToken: 'at', refreshToken: 'rt' });
    expect(pollTimes).toHaveLength(3);
    expect((pollTimes[2] ?? 0) - (pollTimes[1] ?? 0)).toBeGreaterThanOrEqual(4900);
  }, 15_000);

  it("defaults the interval to 5 seconds and reads Google's verification_url", async () => {
    const { device } = await deviceProvider(
      { verification_url: 'https://www.google.com/device', verification_uri: undefined },
      [],
    );
    const started = await startDeviceAuthorization(device);
    expect(started).toMatchObject({
      interval: 5,
      verificationUri: 'https://www.google.com/device',
    });
  });

  it('gives up with reauthorise when the code expires', async () => {
    const { device } = await deviceProvider({ interval: 0.05, expires_in: 1 }, []);
    const started = await startDeviceAuthorization(device);
    await expect(pollDeviceAuthorization(started.handle)).rejects.toMatchObject({
      kind: 'reauthorise',
      code: 'expired_token',
    });
  });

  it('stops at once when the caller aborts', async () => {
    const { device } = await deviceProvider({}, []);
    const started = await startDeviceAuthorization(device);
    const controller = new AbortController();
    const polling = pollDeviceAuthorization(started.handle, controller.signal);
    const reason = new Error('shutting down');
    setTimeout(() => controller.abort(reason), 50);
    const began = Date.now();
    await expect(polling).rejects.toBe(reason);
    expect(Date.now() - began).toBeLessThan(1000);
  });

  it('reports a declined sign-in as reauthorise and a blocked client as config', async () => {
    const declined = await deviceProvider({ interval: 0.05 }, [
      [400, azure('authorization_declined', 70019, 'The user declined.')],
    ]);
    const started = await startDeviceAuthorization(declined.device);
    await expect(pollDeviceAuthorization(started.handle)).rejects.toMatchObject({
      kind: 'reauthorise',
      code: 'authorization_declined',
    });

    const blocked = await scriptedProvider(
      json(400, azure('unauthorized_client', 700016, 'Application not found.')),
    );
    await expect(
      startDeviceAuthorization(account(blocked.base, { flow: 'device' })),
    ).rejects.toMatchObject({ kind: 'config', configKey: 'client_id' });
  });

  it('keeps polling through a provider outage', async () => {
    const { device, pollTimes } = await deviceProvider({ interval: 0.05 }, [
      [503, { error: 'temporarily_unavailable' }],
      [200, { access_token: 'at', token_type: 'Bearer', expires_in: 3600 }],
    ]);
    const started = await startDeviceAuthorization(device);
    await expect(pollDeviceAuthorization(started.handle)).resolves.toMatchObject({
      accessToken: 'at',
    });
    expect(pollTimes).toHaveLength(2);
  });
});

/**
 * The password grant (`oauth2_flow = password`) fed with what a token endpoint really answers:
 * each test points it at a small node:http server that answers the way Azure AD's ROPC endpoint
 * (or another provider) does, and checks the request it sent and how the answer is classified.
 */
import { describe, expect, it } from 'vitest';
import type { AccountConfig } from '../../src/config/types.js';
import { OAuthError, passwordGrant, type OAuthErrorKind } from '../../src/oauth/index.js';
import { json, scriptedProvider } from '../support/scripted-provider.js';

const PASSWORD = 'unit-test account password';
const CLIENT_SECRET = 'unit-test client secret';
const TOKEN_PATH = '/organizations/oauth2/v2.0/token';

/** An Azure AD error body, trace lines and all. */
function azure(error: string, aadsts: number, text: string): Record<string, unknown> {
  return {
    error,
    error_description: `AADSTS${aadsts}: ${text}\r\nTrace ID: 8f1c7a52-2f3e-4c8e-9f3a-1b2c3d4e5f60\r\nCorrelation ID: 0b6f0d2e-9a4c-4f5e-8d7c-6b5a4f3e2d1c\r\nTimestamp: 2026-01-15 10:21:07Z`,
    error_codes: [aadsts],
  };
}

/** A password-flow section as the loader makes it: no permission_url, no redirect_uri. */
function account(base: string, overrides: Partial<AccountConfig> = {}): AccountConfig {
  return {
    name: 'user@example.com',
    permissionUrl: '',
    tokenUrl: `${base}${TOKEN_PATH}`,
    scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    redirectUri: '',
    clientId: '9e5f94bc-e8a4-4e73-b8be-63364c29d753',
    flow: 'password',
    usePkce: false,
    ...overrides,
  };
}

async function refusal(base: string, overrides: Partial<AccountConfig> = {}): Promise<OAuthError> {
  const err = await passwordGrant(account(base, overrides), 'user@example.com', PASSWORD, {
    requestTimeoutMs: 500,
  }).then(
    () => expect.fail('the password grant should have failed'),
    (error: unknown) => error,
  );
  expect(err).toBeInstanceOf(OAuthError);
  const shown = [(err as OAuthError).message, (err as OAuthError).hint, JSON.stringify(err)].join(
    '\n',
  );
  expect(shown.includes(PASSWORD), 'the password is in the error').toBe(false);
  return err as OAuthError;
}

describe('the password grant request', () => {
  it('sends the login name, the password and the scope as written, and returns the tokens', async () => {
    const provider = await scriptedProvider(
      json(200, {
        access_token: 'at',
        token_type: 'Bearer',
        expires_in: 3599,
        refresh_token: 'rt',
      }),
    );
    const before = Math.floor(Date.now() / 1000);
    const tokens = await passwordGrant(account(provider.base), 'User@Example.com', PASSWORD);
    expect(tokens).toEqual({
      accessToken: 'at',
      expiresAt: expect.any(Number),
      refreshToken: 'rt',
    });
    expect(tokens.expiresAt - before).toBeGreaterThanOrEqual(3598);
    expect(Object.fromEntries(provider.forms[0] ?? [])).toEqual({
      grant_type: 'password',
      username: 'User@Example.com',
      password: PASSWORD,
      scope: 'https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
      client_id: '9e5f94bc-e8a4-4e73-b8be-63364c29d753',
    });
  });

  it('sends a client secret when the section has one', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 60 }),
    );
    await passwordGrant(
      account(provider.base, { clientSecret: CLIENT_SECRET }),
      'user@example.com',
      PASSWORD,
    );
    expect(provider.forms[0]?.get('client_secret')).toBe(CLIENT_SECRET);
  });

  it('ignores a permission_url copied from another section, which this flow never uses', async () => {
    const provider = await scriptedProvider(
      json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 60 }),
    );
    const tokens = await passwordGrant(
      account(provider.base, { permissionUrl: 'not an address' }),
      'user@example.com',
      PASSWORD,
    );
    expect(tokens.accessToken).toBe('at');
  });
});

describe('refusals of the password grant', () => {
  const cases: ReadonlyArray<readonly [string, number, string, OAuthErrorKind, RegExp]> = [
    [
      'invalid_grant',
      50126,
      'Error validating credentials due to invalid username or password.',
      'credentials',
      /account's own password/,
    ],
    [
      'invalid_grant',
      50034,
      'The user account {EUII Hidden} does not exist in the example.com directory.',
      'credentials',
      /does not know this user/,
    ],
    [
      'invalid_grant',
      50053,
      'Your account is locked because the user tried to sign in too many times.',
      'credentials',
      /locked/,
    ],
    ['invalid_grant', 50055, 'The password is expired.', 'credentials', /expired.*new one/],
    ['invalid_grant', 50057, 'The user account is disabled.', 'credentials', /disabled/],
    [
      'invalid_grant',
      50076,
      'you must use multi-factor authentication to access',
      'config',
      /multi-factor.*oauth2_flow = authorization_code \(or device\)/,
    ],
    [
      'invalid_grant',
      50079,
      'you must enroll in multi-factor authentication',
      'config',
      /register for multi-factor.*oauth2_flow = authorization_code/,
    ],
    [
      'invalid_grant',
      65001,
      'The user or administrator has not consented to use the application.',
      'config',
      /consent prompt.*oauth2_flow = authorization_code/,
    ],
    [
      'invalid_grant',
      50158,
      'External security challenge not satisfied.',
      'config',
      /extra sign-in step.*oauth2_flow = authorization_code/,
    ],
    [
      'invalid_grant',
      53003,
      'Access has been blocked by Conditional Access policies.',
      'config',
      /Conditional Access.*oauth2_flow = authorization_code/,
    ],
    [
      'interaction_required',
      50076,
      'you must use multi-factor authentication to access',
      'config',
      /multi-factor.*oauth2_flow = authorization_code/,
    ],
  ];

  it.each(cases)('%s with AADSTS%i is %s', async (error, aadsts, text, kind, hint) => {
    const provider = await scriptedProvider(json(400, azure(error, aadsts, text)));
    const refused = await refusal(provider.base);
    expect(refused).toMatchObject({
      kind,
      code: error,
      aadsts,
      status: 400,
      description: `AADSTS${aadsts}: ${text}`,
    });
    expect(refused.message).toBe(`The password grant failed: ${error} (AADSTS${aadsts}: ${text})`);
    expect(refused.hint).toMatch(hint);
    expect(refused.configKey).toBe(kind === 'config' ? 'oauth2_flow' : undefined);
  });

  it("takes any other provider's invalid_grant as a refused password", async () => {
    const provider = await scriptedProvider(
      json(401, { error: 'invalid_grant', error_description: 'Invalid user credentials' }),
    );
    expect(await refusal(provider.base)).toMatchObject({
      kind: 'credentials',
      description: 'Invalid user credentials',
      hint: "With oauth2_flow = password the mail client's password is the account's own password, and the identity provider checks it.",
    });
  });

  it('takes an interaction_required without AADSTS number as a need for a flow with a browser', async () => {
    const provider = await scriptedProvider(json(400, { error: 'interaction_required' }));
    const refused = await refusal(provider.base);
    expect(refused).toMatchObject({ kind: 'config', configKey: 'oauth2_flow' });
    expect(refused.hint).toMatch(/set oauth2_flow = authorization_code \(or device\)/);
  });

  it('says how to allow a client the grant, or to drop the flow', async () => {
    const unauthorized = await scriptedProvider(
      json(400, {
        error: 'unauthorized_client',
        error_description: 'The client is not authorized to use this grant.',
      }),
    );
    expect((await refusal(unauthorized.base)).hint).toMatch(/Allow public client flows/);
    const unsupported = await scriptedProvider(json(400, { error: 'unsupported_grant_type' }));
    expect(await refusal(unsupported.base)).toMatchObject({
      kind: 'config',
      hint: expect.stringMatching(/does not offer the password grant/),
    });
    const secretNeeded = await scriptedProvider(
      json(
        401,
        azure(
          'invalid_client',
          7000218,
          "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ),
      ),
    );
    expect(await refusal(secretNeeded.base)).toMatchObject({
      kind: 'config',
      configKey: 'client_secret',
      hint: expect.stringMatching(/Allow public client flows/),
    });
  });

  it('is transient when the provider is down or busy, whatever the body says', async () => {
    const busy = await scriptedProvider(
      json(
        503,
        azure(
          'invalid_grant',
          50126,
          'Error validating credentials due to invalid username or password.',
        ),
      ),
    );
    expect(await refusal(busy.base)).toMatchObject({ kind: 'transient' });
    const gone = busy.base;
    await busy.close();
    expect(await refusal(gone)).toMatchObject({ kind: 'transient', code: 'network' });
  });
});

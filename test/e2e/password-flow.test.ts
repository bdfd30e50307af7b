import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AccountConfig, StoredTokenFields } from '../../src/config/types.js';
import { OAuthError, passwordGrant, refresh } from '../../src/oauth/index.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { OFFICE365_TEST_SCOPE, TEST_USER_PASSWORD } from '../peers/idp.js';
import { introspect } from '../peers/introspect.js';
import { python } from '../support/clients.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { openTokens, sealTokens } from '../support/sealed-tokens.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { USER, World } from '../support/world.js';

/**
 * `oauth2_flow = password` against the real identity provider (its password grant answers as
 * Azure AD's ROPC endpoint does) and the real Dovecot: the mail client's password is the
 * account's own, the provider is the only judge of it, and the tokens it hands out are stored
 * encrypted with it and refreshed like any others.
 */
let world: World;
let proxy: ProxyProcess;
/** A second account, whose organisation demands multi-factor authentication. */
const MFA_USER = 'mfa.user@example.com';
/** A service account set up wrongly: client_id must be `file` or `key` (test/e2e/service-account.test.ts has working ones). */
const SERVICE_USER = 'robot@example.com';
const NEW_PASSWORD = 'the account password after a change';
const WRONG_PASSWORD = 'a mistyped account password';
const store = (): FileTokenStore => new FileTokenStore(world.tokenStore);

function passwordSection(name: string): string {
  return [
    `[${name}]`,
    'oauth2_flow = password',
    `token_url = ${world.idp.urls.token}`,
    `oauth2_scope = ${OFFICE365_TEST_SCOPE}`,
    `client_id = ${world.idp.clients.passwordClientId}`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  world = await World.start();
  world.idp.setUserPassword(MFA_USER, TEST_USER_PASSWORD);
  world.idp.requireMfa(MFA_USER);
  const serviceAccount = [
    `[${SERVICE_USER}]`,
    'oauth2_flow = service_account',
    'oauth2_scope = https://mail.google.com/',
    'client_id = robot@project.iam.gserviceaccount.com',
    'client_secret = {"type": "service_account"}',
    '',
  ].join('\n');
  const config = world
    .config(`${passwordSection(MFA_USER)}\n${serviceAccount}`)
    .replace(world.accountSection(), passwordSection(USER));
  proxy = await world.startProxy({
    config,
    args: ['--provider-timeout', '2', '--authorisation-wait', '0'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});
beforeEach(async () => {
  world.idp.resetTokenRequests();
  world.idp.setUserPassword(USER, TEST_USER_PASSWORD);
  await store().remove(USER);
});

/** Python's imaplib logs in and opens the inbox, the password handed over in the environment. */
async function imaplibReadsInbox(
  password: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `
import imaplib, os
imap = imaplib.IMAP4('127.0.0.1', int(os.environ['IMAP_PORT']))
print(imap.login(os.environ['IMAP_USER'], os.environ['IMAP_PASSWORD'])[0])
print(imap.select('INBOX', readonly=True)[0])
imap.logout()
`;
  return python(script, {
    IMAP_PORT: String(world.imapPort),
    IMAP_USER: USER,
    IMAP_PASSWORD: password,
  });
}

const storeBytes = (): Promise<string> => readFile(world.tokenStore, 'utf8');

async function storedFields(): Promise<StoredTokenFields | undefined> {
  return store().read(USER);
}

/** Opens the stored tokens with `password`; undefined when it does not decrypt them. */
async function openStored(
  password: string,
): Promise<
  { accessToken?: string; refreshToken?: string; accessTokenExpiry?: number } | undefined
> {
  const fields = await storedFields();
  if (!fields) return undefined;
  return openTokens(fields, password).catch(() => undefined);
}

/** Rewrites the stored tokens as expired, still under `password`, as time passing would. */
async function expireStoredTokens(password: string): Promise<void> {
  const tokens = await openStored(password);
  if (!tokens?.accessToken) throw new Error('no stored tokens to expire');
  await store().write(
    USER,
    await sealTokens(
      {
        ...tokens,
        accessToken: tokens.accessToken,
        accessTokenExpiry: Math.floor(Date.now() / 1000) - 60,
      },
      password,
    ),
  );
}

describe('a mail client logging in to a password-flow account', () => {
  it('signs in at the identity provider with the account password on the first login, and stores the tokens encrypted with it', async () => {
    const run = await imaplibReadsInbox(TEST_USER_PASSWORD);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('OK\nOK\n');
    expect(world.idp.tokenRequests.byGrantType).toEqual({ password: 1 });

    expect((await stat(world.tokenStore)).mode & 0o777).toBe(0o600);
    const fields = await storedFields();
    expect(fields).toMatchObject({
      access_token: expect.stringMatching(/^gAAAAA/),
      refresh_token: expect.stringMatching(/^gAAAAA/),
      token_salt: expect.any(String),
    });
    const tokens = await openStored(TEST_USER_PASSWORD);
    expect(tokens).toMatchObject({
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
    });
    expect(tokens!.accessTokenExpiry! - Date.now() / 1000).toBeGreaterThan(3000);
    expect(await storeBytes()).not.toContain(tokens!.accessToken);
    expect(proxy.output).toMatch(/"event":"token_obtained".*"flow":"password"/);
  });

  it('uses the stored tokens on the next login, without asking the identity provider', async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    world.idp.resetTokenRequests();
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.total).toBe(0);
  });

  it('makes one password grant for many simultaneous first logins', async () => {
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => loginReply(world.imapPort, USER, TEST_USER_PASSWORD)),
    );
    for (const reply of replies) expect(reply).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType).toEqual({ password: 1 });
  });

  it('refreshes an expired access token with the refresh token, not the password', async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    await expireStoredTokens(TEST_USER_PASSWORD);
    world.idp.resetTokenRequests();
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType).toEqual({ refresh_token: 1 });
  });

  it('signs in again with the password when the provider refuses the refresh token, instead of asking for an authorisation', async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    await expireStoredTokens(TEST_USER_PASSWORD);
    const before = await openStored(TEST_USER_PASSWORD);
    world.idp.resetTokenRequests();
    world.idp.failNextToken('invalid_grant');
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType).toEqual({ refresh_token: 1, password: 1 });
    expect((await openStored(TEST_USER_PASSWORD))?.refreshToken).not.toBe(before?.refreshToken);
    expect(proxy.output).toMatch(/"event":"refresh_token_dropped"/);
    expect(proxy.output).not.toMatch(
      new RegExp(`"event":"authorisation_needed"[^\\n]*"account":"${USER}"`),
    );
  });
});

describe('passwords the identity provider judges', () => {
  const refused =
    `a1 NO [AUTHENTICATIONFAILED] The identity provider refused the password for ${USER}: ` +
    'AADSTS50126: Error validating credentials due to invalid username or password. ' +
    "With oauth2_flow = password the mail client's password is the account's own password, and the identity provider checks it.";

  it("refuses a wrong password with the provider's reason and leaves the stored tokens exactly as they were", async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    const before = await storeBytes();
    world.idp.resetTokenRequests();
    expect(await loginReply(world.imapPort, USER, WRONG_PASSWORD)).toBe(refused);
    expect(world.idp.tokenRequests.byGrantType).toEqual({ password: 1 });
    expect(await storeBytes()).toBe(before);
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
  });

  it('refuses a wrong password on the first login and stores nothing', async () => {
    expect(await loginReply(world.imapPort, USER, WRONG_PASSWORD)).toBe(refused);
    expect(await storedFields()).toBeUndefined();
  });

  it('takes a changed password: new tokens encrypted with it replace the old ones, and the old password stops working', async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    const old = await openStored(TEST_USER_PASSWORD);
    world.idp.setUserPassword(USER, NEW_PASSWORD);
    world.idp.resetTokenRequests();

    expect(await loginReply(world.imapPort, USER, NEW_PASSWORD)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType).toEqual({ password: 1 });
    const renewed = await openStored(NEW_PASSWORD);
    expect(renewed?.refreshToken).toEqual(expect.any(String));
    expect(renewed?.refreshToken).not.toBe(old?.refreshToken);
    expect(await openStored(TEST_USER_PASSWORD)).toBeUndefined();

    const after = await storeBytes();
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toBe(refused);
    expect(await storeBytes()).toBe(after);
    expect(await loginReply(world.imapPort, USER, NEW_PASSWORD)).toMatch(/^a1 OK /);
  });

  it('tells an account that needs multi-factor authentication to use a flow with a browser', async () => {
    expect(await loginReply(world.imapPort, MFA_USER, TEST_USER_PASSWORD)).toBe(
      `a1 NO [AUTHENTICATIONFAILED] Account ${MFA_USER} cannot get tokens with oauth2_flow = password: ` +
        "The password grant failed: invalid_grant (AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.). " +
        'Your organisation requires multi-factor authentication for this sign-in, and the password flow cannot do that: ' +
        'set oauth2_flow = authorization_code (or device) and authorise the account once; the proxy then refreshes by itself.',
    );
    expect(proxy.output).not.toMatch(
      new RegExp(`"event":"authorisation_needed"[^\\n]*"account":"${MFA_USER}"`),
    );
  });
});

describe('an identity provider that cannot answer', () => {
  it('makes the first login try again later', async () => {
    await world.idp.refuse();
    try {
      expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toBe(
        `a1 NO [UNAVAILABLE] Cannot get an OAuth2 token for ${USER}: The password grant failed: network error (ECONNREFUSED). Try again later`,
      );
    } finally {
      await world.idp.resume();
    }
    expect(await storedFields()).toBeUndefined();
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
  });

  it.each(['503', 'timeout'] as const)(
    'answering %s while it judges a password that does not decrypt the tokens is temporary, and the tokens are kept',
    async (fault) => {
      expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
      const before = await storeBytes();
      world.idp.failNextToken(fault);
      expect(await loginReply(world.imapPort, USER, NEW_PASSWORD)).toMatch(
        new RegExp(
          `^a1 NO \\[UNAVAILABLE\\] Cannot get an OAuth2 token for ${USER}: The password grant failed: .+ Try again later$`,
        ),
      );
      expect(await storeBytes()).toBe(before);
      expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    },
  );
});

describe('what there is to authorise', () => {
  it('authorize says a password-flow account needs no authorisation, and fails', async () => {
    const authorize = proxy.cli(['authorize', USER]);
    expect(await authorize.exit()).toBe(2);
    expect(authorize.output).toBe(
      `Could not authorise: ${USER} uses oauth2_flow = password, which needs no authorisation: ` +
        "the mail client's first login gets the tokens with the account's own password. " +
        'Log in with the mail client; if the identity provider wants more than a password, use oauth2_flow = authorization_code or device\n',
    );
  });

  it('a service_account account whose client_id is neither file nor key is refused naming client_id, and was warned about at start', async () => {
    const problem = 'with oauth2_flow = service_account, client_id must be set to `file` or `key`';
    const fix =
      "Set client_id = file and client_secret to the path of the service account's JSON key file, or client_id = key and client_secret to the JSON key itself.";
    expect(await loginReply(world.imapPort, SERVICE_USER, 'any password')).toBe(
      `a1 NO [AUTHENTICATIONFAILED] Cannot get a token for ${SERVICE_USER} with the service account of [${SERVICE_USER}]: ${problem}. ${fix}`,
    );
    expect(proxy.events()).toContainEqual(
      expect.objectContaining({
        event: 'startup_warning',
        msg: `[${SERVICE_USER}] ${problem}: its logins are refused until that is fixed. ${fix}`,
      }),
    );
    const authorize = proxy.cli(['authorize', SERVICE_USER]);
    expect(await authorize.exit()).toBe(2);
    expect(authorize.output).toContain(
      `Could not authorise: ${SERVICE_USER} uses oauth2_flow = service_account: the proxy gets its tokens by itself`,
    );
    expect(world.idp.tokenRequests.total).toBe(0);
  });
});

describe('check ACCOUNT', () => {
  /** Runs `check` against the daemon's files, the password piped in as a user would type it. */
  async function check(password: string): Promise<{ code: number | null; output: string }> {
    const run = proxy.cli(['check', USER, '--timeout', '5']);
    run.type(`${password}\n`);
    run.child.stdin?.end();
    const code = await run.exit();
    expect(run.output.includes(password), 'the password is in the output of check').toBe(false);
    return { code, output: run.output };
  }

  it('with nothing stored, signs in with the password as a login would, saves the tokens and checks the servers with them', async () => {
    const { code, output } = await check(TEST_USER_PASSWORD);
    expect(output).toMatch(
      new RegExp(
        `^\\[ OK \\] password grant \\(none were stored\\): signed in as ${USER}, access token valid until \\S+; tokens saved$`,
        'm',
      ),
    );
    expect(output).toMatch(/^\[ OK \] IMAP localhost:\d+: /m);
    expect(code, output).toBe(0);
    expect(await openStored(TEST_USER_PASSWORD)).toMatchObject({
      refreshToken: expect.any(String),
    });
  });

  it('with a password the provider refuses, says so and changes nothing', async () => {
    expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
    const before = await storeBytes();
    const { code, output } = await check(WRONG_PASSWORD);
    expect(output).toContain(
      `[FAIL] password grant: the identity provider refused the password for ${USER}: AADSTS50126: Error validating credentials due to invalid username or password.`,
    );
    expect(output).toContain('Nothing stored was changed.');
    expect(code).toBe(1);
    expect(await storeBytes()).toBe(before);
  });
});

describe('the password grant itself, against the identity provider', () => {
  const account = (): AccountConfig => ({
    name: USER,
    permissionUrl: '',
    tokenUrl: world.idp.urls.token,
    scope: OFFICE365_TEST_SCOPE,
    redirectUri: '',
    clientId: world.idp.clients.passwordClientId,
    flow: 'password',
    usePkce: false,
  });

  async function failure(promise: Promise<unknown>): Promise<OAuthError> {
    const err = await promise.then(
      () => expect.fail('expected an OAuthError'),
      (error: unknown) => error,
    );
    expect(err).toBeInstanceOf(OAuthError);
    return err as OAuthError;
  }

  it("issues the user's tokens, whose refresh token rotates like any other", async () => {
    const tokens = await passwordGrant(account(), USER, TEST_USER_PASSWORD);
    expect(await introspect(world.idp, tokens.accessToken)).toMatchObject({
      active: true,
      sub: USER,
    });
    const refreshed = await refresh(
      account(),
      tokens.refreshToken ?? expect.fail('no refresh token'),
    );
    expect(refreshed.refreshTokenKept).toBe(false);
    expect(await introspect(world.idp, refreshed.accessToken)).toMatchObject({
      active: true,
      sub: USER,
    });
    expect(world.idp.tokenRequests.byGrantType).toEqual({ password: 1, refresh_token: 1 });
  });

  it('classifies the refusals: a wrong password, an unknown user, a user who needs MFA, a client without the grant', async () => {
    expect(await failure(passwordGrant(account(), USER, WRONG_PASSWORD))).toMatchObject({
      kind: 'credentials',
      code: 'invalid_grant',
      aadsts: 50126,
    });
    expect(
      await failure(passwordGrant(account(), 'nobody@example.com', WRONG_PASSWORD)),
    ).toMatchObject({ kind: 'credentials', aadsts: 50034 });
    expect(await failure(passwordGrant(account(), MFA_USER, TEST_USER_PASSWORD))).toMatchObject({
      kind: 'config',
      aadsts: 50076,
      configKey: 'oauth2_flow',
    });
    const publicClient = { ...account(), clientId: world.idp.clientId };
    expect(await failure(passwordGrant(publicClient, USER, TEST_USER_PASSWORD))).toMatchObject({
      kind: 'config',
    });
  });
});

it('never logs a password or a token', async () => {
  expect(await loginReply(world.imapPort, USER, TEST_USER_PASSWORD)).toMatch(/^a1 OK /);
  const tokens = await openStored(TEST_USER_PASSWORD);
  for (const secret of [
    TEST_USER_PASSWORD,
    NEW_PASSWORD,
    WRONG_PASSWORD,
    tokens?.accessToken,
    tokens?.refreshToken,
  ]) {
    expect(secret).toEqual(expect.any(String));
    expect(proxy.output.includes(secret!), 'a secret is in the proxy output').toBe(false);
  }
});

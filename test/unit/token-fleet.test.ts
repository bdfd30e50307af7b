/**
 * Several proxies (or a proxy and the CLI) sharing one token store, and the logins that wait for
 * an authorisation: against the real test identity provider in-process and a real store file.
 * Each manager here has its own store object and key cache, as separate processes would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LoginFailure } from '../../src/auth/types.js';
import type { AccountConfig } from '../../src/config/types.js';
import type { PendingLimits } from '../../src/tokens/pending-authorizations.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { TokenSubject } from '../../src/tokens/subject.js';
import { accountKey, openTokens, sealWith } from '../support/sealed-tokens.js';
import { tokenStatus } from '../../src/tokens/token-status.js';
import { Passphrase } from '../../src/tokens/vault/passphrase.js';
import type { TokenManager, TokenEvent } from '../../src/tokens/token-manager.js';
import { testTokenManager } from '../support/token-manager.js';
import { OFFICE365_TEST_SCOPE, TEST_REDIRECT_URI, startIdp, type Idp } from '../peers/idp.js';
import { eventually } from '../support/eventually.js';

const USER = 'fleet.user@example.com';
const PASSWORD = 'the owner’s mail password';

let idp: Idp;
let dir: string;
let path: string;

beforeAll(async () => {
  idp = await startIdp({ defaultUser: USER });
});
afterAll(async () => {
  await idp?.stop();
});
beforeEach(async (context) => {
  dir = await mkdtemp(join(tmpdir(), 'omp-fleet-'));
  path = join(dir, 'tokens.ini');
  idp.resetTokenRequests();
  context.onTestFinished(() => rm(dir, { recursive: true, force: true }));
});

function account(name = USER): AccountConfig {
  return {
    name,
    permissionUrl: idp.urls.authorize,
    tokenUrl: idp.urls.token,
    scope: OFFICE365_TEST_SCOPE,
    redirectUri: TEST_REDIRECT_URI,
    clientId: idp.clientId,
    flow: 'authorization_code',
    usePkce: true,
  };
}

const subjectOf = (loginName = USER, section = account()): TokenSubject => ({
  key: section.name.startsWith('@') ? loginName : section.name,
  account: section,
  loginName,
});

function manager(
  options: {
    loginWaitMs?: number;
    deleteTokensOnWrongPassword?: boolean;
    pendingLimits?: PendingLimits;
  } = {},
): TokenManager {
  const tokens = testTokenManager(new FileTokenStore(path), options);
  return tokens;
}

/** Real tokens, stored by "another process" encrypted with `password`. */
async function storeTokens(
  options: { expired?: boolean; password?: string } = {},
): Promise<{ accessToken: string }> {
  const issued = await idp.issueTokensFor(USER);
  const expiry = Math.floor(Date.now() / 1000) + (options.expired ? -60 : issued.expiresIn);
  await new FileTokenStore(path).write(
    USER,
    sealWith(await accountKey(options.password ?? PASSWORD), {
      accessToken: issued.accessToken,
      accessTokenExpiry: expiry,
      refreshToken: issued.refreshToken,
    }),
  );
  idp.resetTokenRequests();
  return { accessToken: issued.accessToken };
}

async function refusal(promise: Promise<unknown>): Promise<LoginFailure> {
  const outcome = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(LoginFailure);
  return outcome as LoginFailure;
}

/** A login expected to be refused later, its refusal caught from the start. */
function laterRefusal(promise: Promise<unknown>): Promise<LoginFailure> {
  const outcome = refusal(promise);
  outcome.catch(() => undefined);
  return outcome;
}

describe('one store, several instances', () => {
  it('two instances with an expired token make one refresh between them, and both use it', async () => {
    await storeTokens({ expired: true });
    const [a, b] = [manager(), manager()];
    const [fromA, fromB] = await Promise.all([
      a.accessToken(subjectOf(), new Passphrase(PASSWORD)),
      b.accessToken(subjectOf(), new Passphrase(PASSWORD)),
    ]);
    expect(fromA).toBe(fromB);
    expect(idp.tokenRequests.byGrantType.refresh_token).toBe(1);
    a.close();
    b.close();
  });

  it('a login waiting for authorisation completes when another instance stores tokens it can open', async () => {
    const tokens = manager({ loginWaitMs: 15_000 });
    const owner = tokens.accessToken(subjectOf(), new Passphrase(PASSWORD));
    const stranger = laterRefusal(
      tokens.accessToken(subjectOf(), new Passphrase('somebody else’s password')),
    );
    await eventually(() => expect(tokens.pending.get(USER)?.waiting).toBe(2));

    const { accessToken } = await storeTokens();

    await expect(owner).resolves.toBe(accessToken);
    expect((await stranger).reason).toBe('temporary');
    expect(tokens.pending.get(USER)).toBeUndefined();
    tokens.close();
  });
});

describe('a waiting login whose password nothing proved', () => {
  it('never receives tokens someone else authorised; the owner’s password typed into authorize does', async () => {
    await storeTokens();
    const tokens = manager({ loginWaitMs: 15_000, deleteTokensOnWrongPassword: true });
    // Another local user's wrong password deletes the tokens and leaves a login waiting.
    const attacker = laterRefusal(
      tokens.accessToken(subjectOf(), new Passphrase('the attacker’s password')),
    );
    await eventually(() => expect(tokens.pending.get(USER)?.waiting).toBe(1));

    // The owner authorises. Nothing proved the waiting login's password: it gets nothing yet.
    const completed = await tokens.pending.complete(
      USER,
      await idp.browser(tokens.pending.get(USER)!.url, USER),
    );
    expect(completed.password).toBeUndefined();
    // The owner's mail client logs in meanwhile; its password is not proven either (nothing is stored).
    const ownerLogin = tokens.accessToken(subjectOf(), new Passphrase(PASSWORD));
    await eventually(() => expect(tokens.pending.awaitingOwner(USER)).toBe(2));

    // The owner types the password into `authorize` in a terminal: only the login that brings it
    // gets the tokens; the other is told to log in again.
    expect(await tokens.storeAuthorized(subjectOf(), new Passphrase(PASSWORD))).toBe(true);
    await expect(ownerLogin).resolves.toEqual(expect.any(String));
    const refused = await attacker;
    expect(refused.reason).toBe('temporary');
    expect(refused.message).toMatch(/log in again/);
    await expect(tokens.accessToken(subjectOf(), new Passphrase(PASSWORD))).resolves.toEqual(
      expect.any(String),
    );
    const fields = await new FileTokenStore(path).read(USER);
    await expect(openTokens(fields!, 'the attacker’s password')).rejects.toThrow();
    tokens.close();
  });

  it('a login whose password nothing proved does not wait for tokens it can never get', async () => {
    await storeTokens();
    const tokens = manager({ loginWaitMs: 300, deleteTokensOnWrongPassword: true });
    const attacker = tokens.accessToken(subjectOf(), new Passphrase('the attacker’s password'));
    await eventually(() => expect(tokens.pending.get(USER)?.waiting).toBe(1));
    await tokens.pending.complete(USER, await idp.browser(tokens.pending.get(USER)!.url, USER));
    expect((await refusal(attacker)).reason).toBe('authorisation-needed');
    // Its next login does not pick up the unsaved tokens either.
    expect(
      (await refusal(tokens.accessToken(subjectOf(), new Passphrase('the attacker’s password'))))
        .reason,
    ).toBe('authorisation-needed');
    expect(tokens.state(USER).name).toBe('authorized-unsaved');
    tokens.close();
  });
});

describe('pending authorisations from made-up addresses (a catch-all section)', () => {
  const catchAll = (): AccountConfig => account('@example.com');
  const address = (n: number): string => `made.up.${n}@example.com`;

  it('are capped per section, a login past the cap is refused at once, and they expire', async () => {
    const tokens = manager({ pendingLimits: { lifetimeMs: 300, perSection: 3, total: 5 } });
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        refusal(tokens.accessToken(subjectOf(address(n), catchAll()), new Passphrase(PASSWORD))),
      ),
    );
    expect(outcomes.filter((failure) => failure.reason === 'authorisation-needed')).toHaveLength(3);
    expect(outcomes.filter((failure) => failure.reason === 'temporary')).toHaveLength(9);
    expect(tokens.pending.list()).toHaveLength(3);

    await eventually(() => expect(tokens.pending.list()).toHaveLength(0));
    tokens.close();
  });

  it('are capped in all, across sections', async () => {
    const tokens = manager({ pendingLimits: { lifetimeMs: 60_000, perSection: 10, total: 4 } });
    const other = account('@example.org');
    await Promise.all(
      Array.from({ length: 6 }, (_, n) =>
        refusal(
          tokens.accessToken(
            n % 2 ? subjectOf(address(n), catchAll()) : subjectOf(`x${n}@example.org`, other),
            new Passphrase(PASSWORD),
          ),
        ),
      ),
    );
    expect(tokens.pending.list()).toHaveLength(4);
    tokens.close();
  });

  it('notify at most ten times a minute', async () => {
    const tokens = manager();
    const events: TokenEvent[] = [];
    tokens.on('event', (event) => events.push(event));
    for (let n = 0; n < 15; n += 1)
      await refusal(
        tokens.accessToken(subjectOf(address(n), catchAll()), new Passphrase(PASSWORD)),
      );
    expect(tokens.pending.list()).toHaveLength(15);
    expect(events.filter((event) => event.type === 'authorisation_needed')).toHaveLength(10);
    tokens.close();
  });
});

describe('a completed sign-in', () => {
  it('serves a login that arrives while its tokens are being saved, and starts no new sign-in', async () => {
    const tokens = manager({ loginWaitMs: 5_000 });
    const waiting = tokens.accessToken(subjectOf(), new Passphrase(PASSWORD));
    await eventually(() => expect(tokens.pending.get(USER)?.waiting).toBe(1));
    let arriving: Promise<string> | undefined;
    // Sent as the sign-in completes, before its tokens are sealed (a key derivation) and written.
    tokens.on('event', (event) => {
      if (event.type === 'token_obtained')
        arriving = tokens.accessToken(subjectOf(), new Passphrase(PASSWORD));
    });
    await tokens.pending.complete(USER, await idp.browser(tokens.pending.get(USER)!.url, USER));
    const accessToken = await waiting;
    expect(await arriving).toBe(accessToken);
    expect(tokens.pending.get(USER)).toBeUndefined();
    tokens.close();
  });
});

describe('tokens authorised while no login waited', () => {
  it('are stored by the next login whose password opens the tokens already there', async () => {
    await storeTokens();
    const tokens = manager();
    const pending = await tokens.authorize(subjectOf());
    const completed = await tokens.pending.complete(USER, await idp.browser(pending.url, USER));
    expect(tokens.state(USER).name).toBe('authorized-unsaved');

    expect(await tokens.accessToken(subjectOf(), new Passphrase(PASSWORD))).toBe(
      completed.tokens.accessToken,
    );
    expect(tokens.state(USER).name).toBe('active');
    const stored = await new FileTokenStore(path).read(USER);
    expect((await openTokens(stored!, PASSWORD)).accessToken).toBe(completed.tokens.accessToken);
    tokens.close();
  });

  it('stay for the next login when a background refresh finds the old refresh token dead', async () => {
    await storeTokens();
    const tokens = manager();
    await tokens.accessToken(subjectOf(), new Passphrase(PASSWORD));
    const pending = await tokens.authorize(subjectOf());
    const completed = await tokens.pending.complete(USER, await idp.browser(pending.url, USER));
    expect(tokens.state(USER).name).toBe('authorized-unsaved');

    idp.failNextToken('invalid_grant');
    expect((await refusal(tokens.refreshIfDue(subjectOf(), true))).reason).toBe(
      'authorisation-needed',
    );
    expect(tokens.pending.get(USER)).toBeUndefined();
    expect(await tokens.accessToken(subjectOf(), new Passphrase(PASSWORD))).toBe(
      completed.tokens.accessToken,
    );
    tokens.close();
  });
});

describe('status', () => {
  it('reads a dead refresh token from the account’s state, once its authorisation has expired', async () => {
    await storeTokens({ expired: true });
    const tokens = manager({ pendingLimits: { lifetimeMs: 200, perSection: 20, total: 100 } });
    idp.failNextToken('invalid_grant');
    expect((await refusal(tokens.accessToken(subjectOf(), new Passphrase(PASSWORD)))).reason).toBe(
      'authorisation-needed',
    );
    expect((await tokenStatus(tokens, [subjectOf()]))[0]?.state).toBe('pending');
    await eventually(async () =>
      expect((await tokenStatus(tokens, [subjectOf()]))[0]?.state).toBe('needs-reauthorisation'),
    );
    tokens.close();
  });
});

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredTokenFields } from '../../src/config/types.js';
import { completeAuthorization, startAuthorization } from '../../src/oauth/index.js';
import { fernetDecrypt, fernetEncrypt } from '../../src/tokens/vault/fernet.js';
import { DEFAULT_ITERATIONS, LEGACY_ITERATIONS } from '../../src/tokens/vault/key-derivation.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import type { AccountKey } from '../../src/tokens/vault/vault.js';
import { OFFICE365_TEST_SCOPE } from '../peers/idp.js';
import { Conversation } from '../support/conversation.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { accountKey, openingKey, sealWith } from '../support/sealed-tokens.js';
import { PASSWORD, World } from '../support/world.js';

/**
 * A user switching from email-oauth2-proxy with `encrypt_client_secret_on_first_use`: the config
 * has no client_secret, the token store holds the tokens and `client_secret_encrypted` under one
 * salt. The identity provider's desktop client is confidential and refuses every token request
 * without its secret, so each success proves the proxy decrypted and sent it; afterwards the store
 * must still hold a secret that its own (possibly new) salt decrypts.
 */
let world: World;
let proxy: ProxyProcess;
/** Tokens and secret in the store; a legacy iteration count, so the first save moves to a new salt. */
const MIGRATED = 'migrated.user@example.com';
/** Only token_salt and the secret are stored (its tokens were dropped): it needs authorising. */
const UNAUTHORIZED = 'unauthorised.user@example.com';
/** The secret is encrypted under another key than the tokens: a damaged section. */
const DAMAGED = 'damaged.user@example.com';
/** Authorised with the stand-alone CLI (no daemon), which asks the password first. */
const STANDALONE = 'standalone.user@example.com';
const printed: string[] = [];

/** An account of the desktop client with no client_secret in the config. */
function desktopSection(user: string): string {
  return world
    .accountSection(user)
    .replace(/client_id = .*/, `client_id = ${world.idp.clients.desktop.clientId}`)
    .replace(/redirect_uri = .*/, 'redirect_uri = http://localhost/');
}

const secret = (): string => world.idp.clients.desktop.clientSecret;
const store = (): FileTokenStore => new FileTokenStore(world.tokenStore);

/** Real tokens of the desktop client for `user`, as an earlier email-oauth2-proxy sign-in left them. */
async function desktopTokens(user: string): Promise<{ accessToken: string; refreshToken: string }> {
  const account = {
    name: user,
    permissionUrl: world.idp.urls.authorize,
    tokenUrl: world.idp.urls.token,
    scope: OFFICE365_TEST_SCOPE,
    redirectUri: 'http://localhost/',
    clientId: world.idp.clients.desktop.clientId,
    flow: 'authorization_code' as const,
    usePkce: true,
  };
  const pending = await startAuthorization(account, { clientSecret: secret(), loginHint: user });
  const tokens = await completeAuthorization(
    account,
    pending,
    await world.idp.browser(pending.url, user),
    { clientSecret: secret() },
  );
  return { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken! };
}

function legacyKey(): Promise<AccountKey> {
  return accountKey(PASSWORD, LEGACY_ITERATIONS, Buffer.from('0123456789abcdef'));
}

/** Writes `user`'s section the way email-oauth2-proxy's cache store holds it. */
async function seed(
  user: string,
  key: AccountKey,
  options: { tokens?: boolean; secretKey?: AccountKey } = {},
): Promise<StoredTokenFields> {
  const tokens =
    options.tokens === false
      ? {}
      : { ...(await desktopTokens(user)), accessTokenExpiry: Math.floor(Date.now() / 1000) - 60 };
  const fields = {
    ...sealWith(key, tokens),
    client_secret_encrypted: fernetEncrypt((options.secretKey ?? key).seals.bytes, secret()),
  };
  await store().write(user, fields);
  return fields;
}

/** The stored section of `user` and its secret, decrypted with the key PASSWORD gives for the section's own salt. */
async function storedSecret(user: string): Promise<{ fields: StoredTokenFields; secret: string }> {
  const fields = (await store().read(user))!;
  const key = await openingKey(fields, PASSWORD);
  return { fields, secret: fernetDecrypt(key.opens.bytes, fields.client_secret_encrypted!) };
}

async function loginReply(user: string, password = PASSWORD): Promise<string> {
  const client = await Conversation.connect(world.imapPort);
  try {
    await client.expect(/^\* OK /);
    client.send(`a1 LOGIN "${user}" "${password}"`);
    let line = await client.line(20_000);
    while (line.startsWith('* ') && !line.startsWith('* BYE')) line = await client.line(20_000);
    printed.push(line);
    return line;
  } finally {
    client.close();
  }
}

/** Runs `authorize`, pasting the sign-in's redirect address; resolves with the exit code. */
async function authorizeByPaste(run: ProxyProcess, user: string): Promise<number | null> {
  const [, url] = await run.waitFor(/sign in:\n(\S+)\n/);
  run.type(`${await world.idp.browser(url!, user)}\n`);
  const code = await run.exit();
  printed.push(run.output);
  return code;
}

beforeAll(async () => {
  world = await World.start();
  const accounts = [MIGRATED, UNAUTHORIZED, DAMAGED, STANDALONE].map(desktopSection).join('\n');
  proxy = await world.startProxy({
    config: world.config(accounts),
    args: ['--debug', '--authorisation-wait', '0'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

describe('a client secret email-oauth2-proxy stored encrypted', () => {
  it('is decrypted by the login and sent with the refresh; the store keeps it decryptable under its new salt', async () => {
    const before = await seed(MIGRATED, await legacyKey());
    world.idp.resetTokenRequests();

    expect(await loginReply(MIGRATED)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType.refresh_token).toBe(1);

    const after = await storedSecret(MIGRATED);
    expect(after.fields.token_iterations).toBe(String(DEFAULT_ITERATIONS));
    expect(after.fields.token_salt).not.toBe(before.token_salt);
    expect(after.secret).toBe(secret());
    // email-oauth2-proxy finds it where it put it: in the account's section, beside token_salt.
    expect(Object.keys(after.fields)).toEqual([
      'access_token',
      'access_token_expiry',
      'refresh_token',
      'token_salt',
      'token_iterations',
      'client_secret_encrypted',
      'last_activity',
    ]);

    expect(await loginReply(MIGRATED)).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType.refresh_token).toBe(1);
  });

  it('cannot be used by `authorize` before a login decrypted it, and says what to do; after one it can', async () => {
    const before = await seed(UNAUTHORIZED, await accountKey(PASSWORD), { tokens: false });
    const refused = proxy.cli(['authorize', UNAUTHORIZED]);
    expect(await refused.exit()).toBe(2);
    printed.push(refused.output);
    expect(refused.output).toContain(
      `Could not authorise: The client secret of ${UNAUTHORIZED} is stored encrypted (client_secret_encrypted) and no login has decrypted it yet. ` +
        'Log in once with the mail client so the proxy can decrypt it, or put the secret in client_secret.',
    );

    // The login decrypts the secret (the password opens it with the stored salt) and starts the authorisation.
    expect(await loginReply(UNAUTHORIZED)).toMatch(
      new RegExp(`^a1 NO \\[UNAVAILABLE\\] ${UNAUTHORIZED} needs authorising`),
    );
    world.idp.resetTokenRequests();
    expect(await authorizeByPaste(proxy.cli(['authorize', UNAUTHORIZED]), UNAUTHORIZED)).toBe(0);
    expect(world.idp.tokenRequests.byGrantType.authorization_code).toBe(1);
    expect(await loginReply(UNAUTHORIZED)).toMatch(/^a1 OK /);

    const after = await storedSecret(UNAUTHORIZED);
    expect(after.fields.token_salt).not.toBe(before.token_salt);
    expect(after.secret).toBe(secret());
  });

  it('under another key than the tokens refuses the login as a config problem, naming the fix', async () => {
    await seed(DAMAGED, await accountKey(PASSWORD), {
      secretKey: await accountKey('another password'),
    });
    expect(await loginReply(DAMAGED)).toBe(
      `a1 NO [AUTHENTICATIONFAILED] The client secret of ${DAMAGED} is stored encrypted (client_secret_encrypted), but the password that ` +
        `decrypts the account's tokens does not decrypt it. Put the client secret in client_secret in the [${DAMAGED}] section of the config file`,
    );
  });

  it('is decrypted by the stand-alone `authorize` with the password it asks first, and stored with the new tokens', async () => {
    const before = await seed(STANDALONE, await accountKey(PASSWORD), { tokens: false });
    const files = { configFile: proxy.configFile, tokenStore: proxy.tokenStore };
    const noDaemon = [
      'authorize',
      STANDALONE,
      '--control-socket',
      join(world.dir, 'no-daemon.sock'),
    ];

    const mistyped = ProxyProcess.command(noDaemon, files);
    await mistyped.waitFor(/it decrypts the stored client secret and encrypts the new tokens\): $/);
    mistyped.type('not the password\n');
    expect(await mistyped.exit()).toBe(1);
    printed.push(mistyped.output);
    expect(mistyped.output).toContain(
      `Wrong password for ${STANDALONE}: it does not decrypt the account's stored client secret (client_secret_encrypted).`,
    );

    const run = ProxyProcess.command(noDaemon, files);
    await run.waitFor(/it decrypts the stored client secret and encrypts the new tokens\): $/);
    run.type(`${PASSWORD}\n`);
    expect(await authorizeByPaste(run, STANDALONE)).toBe(0);
    expect(run.output).toContain(`Authorised ${STANDALONE}; tokens stored in`);
    const after = await storedSecret(STANDALONE);
    expect(after.fields.refresh_token).toBeDefined();
    expect(after.fields.token_salt).not.toBe(before.token_salt);
    expect(after.secret).toBe(secret());
  });

  it('is decrypted and sent by `check`, which saves it again with the refreshed tokens', async () => {
    await seed(MIGRATED, await accountKey(PASSWORD));
    const check = ProxyProcess.command(['check', MIGRATED, '--timeout', '5'], {
      configFile: proxy.configFile,
      tokenStore: proxy.tokenStore,
    });
    check.type(`${PASSWORD}\n`);
    check.child.stdin?.end();
    await check.exit();
    printed.push(check.output);
    expect(check.output).toMatch(
      /^Client +\S+ \(confidential: client_secret_encrypted is in the token store\)$/m,
    );
    expect(check.output).toMatch(
      /\[ OK \] token refresh: new access token valid until .*; the rotated refresh token was saved/,
    );
    expect((await storedSecret(MIGRATED)).secret).toBe(secret());
  });

  it("never shows up in the proxy's output, the CLI's or the replies", () => {
    const everything = [proxy.output, ...printed].join('\n');
    expect(everything).toContain('"level":20'); // debug lines were written, so the scan covers them
    expect(everything.includes(secret())).toBe(false);
  });
});

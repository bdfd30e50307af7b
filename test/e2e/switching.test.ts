import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/config/configparser.js';
import { fernetEncrypt } from '../../src/tokens/vault/fernet.js';
import { KeyCache } from '../../src/tokens/vault/key-cache.js';
import { LEGACY_ITERATIONS } from '../../src/tokens/vault/key-derivation.js';
import { OFFICE365_TEST_SCOPE, publicClientAccountLines } from '../peers/idp.js';
import { runClient } from '../support/clients.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * Switching from email-oauth2-proxy in one step: its config file, as it leaves it after months of
 * use (its own header section, the account's tokens inside the account section, encrypted before
 * it wrote `token_iterations`, an access token long expired), and its command-line flags. Nothing
 * is converted by hand; the upstream CA comes from NODE_EXTRA_CA_CERTS, as a user with a private
 * CA would set it, so the file holds no key of ours.
 */
let world: World;
let dir: string;
/** The config text, and where the proxy process reads it from. */
let configText: string;
let configFile: string;
const running: ProxyProcess[] = [];

beforeAll(async () => {
  world = await World.start();
  await world.dovecot.deliver(
    USER,
    Buffer.from('Subject: still here\r\n\r\nMail from before the switch\r\n'),
  );
  dir = join(world.dir, 'switching');
  await mkdir(dir);
  const issued = await world.idp.issueTokensFor(USER, OFFICE365_TEST_SCOPE);
  configText = await emailproxyConfig(issued.accessToken, issued.refreshToken);
});
afterAll(async () => {
  await Promise.allSettled(running.map((proxy) => proxy.stop()));
  await world?.stop();
});

/** The config as email-oauth2-proxy leaves it, tokens encrypted with its legacy 100,000 iterations. */
async function emailproxyConfig(accessToken: string, refreshToken: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await new KeyCache().get(PASSWORD, salt, LEGACY_ITERATIONS);
  const aMonthAgo = Math.floor(Date.now() / 1000) - 30 * 24 * 3600;
  return [
    '[Email OAuth 2.0 Proxy configuration file]',
    'documentation = Server and account sections follow. See the readme for every option.',
    '',
    '[Server setup]',
    '',
    `[IMAP-${world.imapPort}]`,
    'server_address = localhost',
    `server_port = ${world.dovecot.imapsPort}`,
    'local_address = 127.0.0.1',
    '',
    '[Account setup]',
    '',
    ...publicClientAccountLines(world.idp, USER),
    `token_salt = ${salt.toString('base64')}`,
    `access_token = ${fernetEncrypt(key, accessToken)}`,
    `access_token_expiry = ${aMonthAgo + 3600}`,
    `refresh_token = ${fernetEncrypt(key, refreshToken)}`,
    `last_activity = ${aMonthAgo}`,
    '',
    '[emailproxy]',
    'delete_account_token_on_password_error = True',
    'encrypt_client_secret_on_first_use = False',
    'allow_catch_all_accounts = False',
    '',
  ].join('\n');
}

async function start(): Promise<ProxyProcess> {
  const proxy = await ProxyProcess.start({
    dir,
    config: configText,
    args: ['--no-gui'],
    env: { NODE_EXTRA_CA_CERTS: world.dovecot.caFile },
  });
  running.push(proxy);
  configFile = proxy.configFile;
  await proxy.ready();
  return proxy;
}

const fetchFirstMessage = (): ReturnType<typeof runClient> =>
  runClient('curl', [
    '-sS',
    '--user',
    `${USER}:${PASSWORD}`,
    `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
  ]);

describe('switching from email-oauth2-proxy', () => {
  it('its config and tokens work as they are: one refresh, the mail arrives, the config is not touched', async () => {
    const proxy = await start();
    world.idp.resetTokenRequests();

    const fetched = await fetchFirstMessage();
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Mail from before the switch');
    expect(world.idp.tokenRequests.byGrantType.refresh_token).toBe(1);
    expect(proxy.output).not.toContain('Please visit');

    // The refreshed tokens went to our token store, under the current iteration count and a new salt.
    const stored = parseIni(await readFile(proxy.tokenStore, 'utf8'), proxy.tokenStore).get(USER);
    expect(stored?.get('token_iterations')).toBe('1200000');
    expect(stored?.get('refresh_token')).toMatch(/^gAAAAA/);
    expect(await readFile(configFile, 'utf8')).toBe(configText);
    expect(await proxy.stop()).toBe(0);
  });

  it('after a restart the token store is used, not the config’s spent refresh token', async () => {
    await start();
    world.idp.resetTokenRequests();
    const fetched = await fetchFirstMessage();
    expect(fetched.stdout).toContain('Mail from before the switch');
    expect(world.idp.tokenRequests.total).toBe(0);
    expect(await readFile(configFile, 'utf8')).toBe(configText);
  });
});

import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';
import { accountSummary } from '../../src/doctor/account-summary.js';

/**
 * `jwt_certificate_path` / `jwt_key_path` in an account section: paths resolved against the
 * config file's folder, both or neither, a stand-in for client_credentials' secret, a confidential
 * client (no PKCE by default), and start-up warnings when they cannot or will not be used.
 */
const run = promisify(execFile);
let dir: string;
let file: string;
let store: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-cert-config-'));
  file = join(dir, 'config.ini');
  store = join(dir, 'tokens.ini');
  await writeFile(store, '', { mode: 0o600 });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SERVER = '[IMAP-1993]\nserver_address = outlook.office365.com\n';

function appOnly(lines: readonly string[]): string {
  return [
    SERVER,
    '[scanner@example.com]',
    'oauth2_flow = client_credentials',
    'token_url = https://login.microsoftonline.com/contoso/oauth2/v2.0/token',
    'oauth2_scope = https://outlook.office365.com/.default',
    'client_id = 11111111-2222-4333-8444-555555555555',
    ...lines,
    '',
  ].join('\n');
}

function withSignIn(lines: readonly string[]): string {
  return [
    SERVER,
    '[user@example.com]',
    'permission_url = https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize',
    'token_url = https://login.microsoftonline.com/contoso/oauth2/v2.0/token',
    'oauth2_scope = https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
    'redirect_uri = https://localhost',
    'client_id = 11111111-2222-4333-8444-555555555555',
    ...lines,
    '',
  ].join('\n');
}

async function makeCertificate(): Promise<{ certificatePath: string; keyPath: string }> {
  const certificatePath = join(dir, 'app.pem');
  const keyPath = join(dir, 'app.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certificatePath,
    '-days',
    '2',
    '-subj',
    '/CN=config test',
  ]);
  await chmod(keyPath, 0o600);
  return { certificatePath, keyPath };
}

describe('reading jwt_certificate_path and jwt_key_path', () => {
  it('resolves them against the config file folder, and they stand in for the client secret', () => {
    const config = parseConfig(
      appOnly(['jwt_certificate_path = certs/app.pem', 'jwt_key_path = /etc/keys/app.key']),
      file,
    );
    const [account] = config.accounts;
    expect(account?.certificateCredentials).toEqual({
      certificatePath: join(dir, 'certs/app.pem'),
      keyPath: '/etc/keys/app.key',
    });
    expect(account?.clientSecret).toBeUndefined();
  });

  it('refuses one without the other, naming the missing key', () => {
    expect(() => parseConfig(appOnly(['jwt_certificate_path = app.pem']), file)).toThrow(
      /section \[scanner@example\.com\], key jwt_key_path: missing, and jwt_certificate_path is set/,
    );
    expect(() => parseConfig(appOnly(['jwt_key_path = app.key']), file)).toThrow(
      /section \[scanner@example\.com\], key jwt_certificate_path: missing, and jwt_key_path is set/,
    );
    // Empty means unset, as for every key.
    expect(() =>
      parseConfig(appOnly(['jwt_certificate_path = app.pem', 'jwt_key_path =']), file),
    ).toThrow(/key jwt_key_path: missing/);
  });

  it('still asks client_credentials accounts for a secret when neither is set', () => {
    expect(() => parseConfig(appOnly([]), file)).toThrow(
      /key client_secret: missing, and the client_credentials flow needs it/,
    );
  });

  it('check describes the client as confidential with certificate credentials, by the certificate path', () => {
    const config = parseConfig(
      appOnly(['jwt_certificate_path = app.pem', 'jwt_key_path = app.key']),
      file,
    );
    const account = config.accounts[0]!;
    const rows = accountSummary(
      config,
      { key: account.name, account, loginName: account.name },
      store,
    );
    expect(rows).toContainEqual([
      'Client',
      [`${account.clientId} (confidential: certificate credentials, ${join(dir, 'app.pem')})`],
    ]);
  });

  it('makes a confidential client: no PKCE unless use_pkce says so', () => {
    const files = ['jwt_certificate_path = app.pem', 'jwt_key_path = app.key'];
    expect(parseConfig(withSignIn(files), file).accounts[0]?.usePkce).toBe(false);
    expect(parseConfig(withSignIn([...files, 'use_pkce = True']), file).accounts[0]?.usePkce).toBe(
      true,
    );
    expect(parseConfig(withSignIn([]), file).accounts[0]?.usePkce).toBe(true);
  });
});

describe('start-up warnings for certificate credentials', () => {
  it('say nothing about usable files kept private', async () => {
    const { certificatePath, keyPath } = await makeCertificate();
    const text = appOnly([
      `jwt_certificate_path = ${certificatePath}`,
      `jwt_key_path = ${keyPath}`,
    ]);
    await writeFile(file, text, { mode: 0o644 });
    expect(await startupWarnings(parseConfig(text, file), store)).toEqual([]);
  });

  it('warn about a private key others can read, with the fix', async () => {
    const { certificatePath, keyPath } = await makeCertificate();
    await chmod(keyPath, 0o640);
    const text = appOnly([
      `jwt_certificate_path = ${certificatePath}`,
      `jwt_key_path = ${keyPath}`,
    ]);
    await writeFile(file, text, { mode: 0o600 });
    expect(await startupWarnings(parseConfig(text, file), store)).toEqual([
      `${keyPath} is readable by other users (mode 640) and it holds the private key of certificate credentials; run: chmod 600 ${keyPath}`,
    ]);
  });

  it('say that a client secret wins over the certificate', async () => {
    const { certificatePath, keyPath } = await makeCertificate();
    const text = appOnly([
      'client_secret = s3cret',
      `jwt_certificate_path = ${certificatePath}`,
      `jwt_key_path = ${keyPath}`,
    ]);
    await writeFile(file, text, { mode: 0o600 });
    expect(await startupWarnings(parseConfig(text, file), store)).toEqual([
      '[scanner@example.com] has both client_secret and certificate credentials (jwt_certificate_path, jwt_key_path): ' +
        'the client secret is used; remove client_secret to use the certificate',
    ]);
  });

  it('say that the login password wins under use_login_password_as_client_credentials_secret', async () => {
    const { certificatePath, keyPath } = await makeCertificate();
    const text = `${appOnly([`jwt_certificate_path = ${certificatePath}`, `jwt_key_path = ${keyPath}`])}\n[emailproxy]\nuse_login_password_as_client_credentials_secret = True\n`;
    await writeFile(file, text, { mode: 0o600 });
    const warnings = await startupWarnings(parseConfig(text, file), store);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^\[scanner@example\.com\] has certificate credentials .* the login password is sent as the app's client secret instead/,
    );
  });

  it('say which file is unusable, without quoting it', async () => {
    const { certificatePath } = await makeCertificate();
    const missing = join(dir, 'missing.key');
    const text = appOnly([
      `jwt_certificate_path = ${certificatePath}`,
      `jwt_key_path = ${missing}`,
    ]);
    await writeFile(file, text, { mode: 0o600 });
    expect(await startupWarnings(parseConfig(text, file), store)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^\\[scanner@example\\.com\\] cannot read jwt_key_path ${missing}: it does not exist: its token requests fail until that is fixed`,
        ),
      ),
    ]);
  });
});

/**
 * The config side of email-oauth2-proxy's encrypted client secret: `client_secret_encrypted` is
 * read with its `token_salt` as stored fields, and `encrypt_client_secret_on_first_use` is not
 * applied (the config file is never rewritten), which start-up says once.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-secret-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SERVER = '[IMAP-1993]\nserver_address = outlook.office365.com\n';
const ACCOUNT =
  '[a@example.com]\npermission_url = https://login.example.com/authorize\ntoken_url = https://login.example.com/token\n' +
  'oauth2_scope = s offline_access\nredirect_uri = https://localhost\nclient_id = c\n';
const ENCRYPTED = `${ACCOUNT}client_secret_encrypted = gAAAAA-secret\ntoken_salt = c2FsdHNhbHRzYWx0c2FsdA==\ntoken_iterations = 1200000\n`;
const NOT_APPLIED =
  'encrypt_client_secret_on_first_use in [emailproxy] is not applied: oauth2-mail-proxy never rewrites the config file, ' +
  'so client_secret stays as written (client_secret_encrypted is still read)';

it('reads client_secret_encrypted with the salt it was encrypted under, as stored fields', () => {
  const [account] = parseConfig(SERVER + ENCRYPTED, 'config.ini').accounts;
  expect(account?.clientSecretEncrypted).toBe('gAAAAA-secret');
  expect(account?.usePkce).toBe(false);
  expect(account?.tokensInConfig).toEqual({
    client_secret_encrypted: 'gAAAAA-secret',
    token_salt: 'c2FsdHNhbHRzYWx0c2FsdA==',
    token_iterations: '1200000',
  });
});

it('says once at start that encrypt_client_secret_on_first_use is not applied', async () => {
  const text = `${SERVER}${ACCOUNT}client_secret = plain\n[emailproxy]\nencrypt_client_secret_on_first_use = True\n`;
  const file = join(dir, 'config.ini');
  await writeFile(file, text, { mode: 0o600 });
  expect(await startupWarnings(parseConfig(text, file), join(dir, 'missing.ini'))).toEqual([
    NOT_APPLIED,
  ]);
  const off = `${SERVER}${ACCOUNT}[emailproxy]\nencrypt_client_secret_on_first_use = False\n`;
  expect(await startupWarnings(parseConfig(off, file), join(dir, 'missing.ini'))).toEqual([]);
});

it('counts a config holding only the encrypted secret and its salt as holding secrets, not tokens', async () => {
  const file = join(dir, 'config.ini');
  await writeFile(file, SERVER + ENCRYPTED);
  await chmod(file, 0o644);
  expect(
    await startupWarnings(parseConfig(SERVER + ENCRYPTED, file), join(dir, 'missing.ini')),
  ).toEqual([
    `${file} is readable by other users (mode 644) and it holds client secrets; run: chmod 600 ${file}`,
  ]);
});

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-warn-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CONFIG = '[IMAP-1993]\nserver_address = outlook.office365.com\n';
const ACCOUNT =
  '[a@example.com]\npermission_url = https://login.example.com/authorize\ntoken_url = https://login.example.com/token\noauth2_scope = s offline_access\nredirect_uri = https://localhost\nclient_id = c\n';
const WITH_SECRET = `${CONFIG}${ACCOUNT}client_secret = s3cret\n`;

it('says nothing about owner-only files and loopback listeners', async () => {
  const file = join(dir, 'config.ini');
  await writeFile(file, CONFIG, { mode: 0o600 });
  await writeFile(join(dir, 'tokens.ini'), '', { mode: 0o600 });
  expect(await startupWarnings(parseConfig(CONFIG, file), join(dir, 'tokens.ini'))).toEqual([]);
});

it('warns when the config or the token store is readable by others, with the fix', async () => {
  const file = join(dir, 'config.ini');
  const store = join(dir, 'tokens.ini');
  await writeFile(file, WITH_SECRET);
  await chmod(file, 0o644);
  await writeFile(store, '');
  await chmod(store, 0o640);
  expect(await startupWarnings(parseConfig(WITH_SECRET, file), store)).toEqual([
    `${file} is readable by other users (mode 644) and it holds client secrets; run: chmod 600 ${file}`,
    `${store} is readable by other users (mode 640) and it holds the encrypted tokens; run: chmod 600 ${store}`,
  ]);
});

it('says why a readable config matters: its tokens too, and nothing for a config without secrets', async () => {
  const file = join(dir, 'config.ini');
  const withTokens = `${WITH_SECRET}access_token = gAAAAA-x\ntoken_salt = c2FsdA==\n`;
  const withoutSecrets = `${CONFIG}${ACCOUNT}client_secret =\n`;
  await writeFile(file, withTokens);
  await chmod(file, 0o644);
  const missingStore = join(dir, 'missing.ini');
  expect(await startupWarnings(parseConfig(withTokens, file), missingStore)).toEqual([
    `${file} is readable by other users (mode 644) and it holds client secrets and tokens; run: chmod 600 ${file}`,
  ]);
  await writeFile(file, withoutSecrets);
  expect(await startupWarnings(parseConfig(withoutSecrets, file), missingStore)).toEqual([]);
});

it('warns about a plaintext listener on the network that the owner allowed', async () => {
  const text =
    '[IMAP-1993]\nserver_address = x.example\nlocal_address = 0.0.0.0\n[emailproxy]\nallow_plaintext_network_logins = yes\n';
  const file = join(dir, 'config.ini');
  await writeFile(file, text, { mode: 0o600 });
  expect(await startupWarnings(parseConfig(text, file), join(dir, 'missing.ini'))).toEqual([
    '[IMAP-1993] listens on 0.0.0.0 without TLS (allow_plaintext_network_logins is on): mail passwords cross the network in clear text',
  ]);
});

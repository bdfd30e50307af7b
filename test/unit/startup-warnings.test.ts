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

it('says nothing about owner-only files and loopback listeners', async () => {
  const file = join(dir, 'config.ini');
  await writeFile(file, CONFIG, { mode: 0o600 });
  await writeFile(join(dir, 'tokens.ini'), '', { mode: 0o600 });
  expect(await startupWarnings(parseConfig(CONFIG, file), join(dir, 'tokens.ini'))).toEqual([]);
});

it('warns when the config or the token store is readable by others, with the fix', async () => {
  const file = join(dir, 'config.ini');
  const store = join(dir, 'tokens.ini');
  await writeFile(file, CONFIG);
  await chmod(file, 0o644);
  await writeFile(store, '');
  await chmod(store, 0o640);
  expect(await startupWarnings(parseConfig(CONFIG, file), store)).toEqual([
    `${file} is readable by other users (mode 644) and it may hold client secrets and tokens; run: chmod 600 ${file}`,
    `${store} is readable by other users (mode 640) and it holds the encrypted tokens; run: chmod 600 ${store}`,
  ]);
});

it('warns about a plaintext listener on the network that the owner allowed', async () => {
  const text = '[IMAP-1993]\nserver_address = x.example\nlocal_address = 0.0.0.0\n[emailproxy]\nallow_plaintext_network_logins = yes\n';
  const file = join(dir, 'config.ini');
  await writeFile(file, text, { mode: 0o600 });
  expect(await startupWarnings(parseConfig(text, file), join(dir, 'missing.ini'))).toEqual([
    '[IMAP-1993] listens on 0.0.0.0 without TLS (allow_plaintext_network_logins is on): mail passwords cross the network in clear text',
  ]);
});

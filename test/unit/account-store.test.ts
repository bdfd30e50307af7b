/**
 * The token store as the token manager uses it, on a real store file: new tokens saved while a
 * refresh holds the account's lock land after the refresh, so its older tokens never overwrite
 * them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AccountSlots } from '../../src/tokens/account-slots.js';
import { AccountStore } from '../../src/tokens/account-store.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { Vault } from '../../src/tokens/vault/vault.js';

const ACCOUNT = 'user@example.com';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-account-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('saves new tokens after a refresh that holds the lock, never before it', async () => {
  const file = new FileTokenStore(join(dir, 'tokens.ini'));
  const stored = new AccountStore(file, new Vault(), new AccountSlots(), pino({ level: 'silent' }));
  let asking!: () => void;
  const refreshAsking = new Promise<void>((resolve) => (asking = resolve));
  // A refresh: under the lock, it asks the provider for a while, then writes what it got.
  const refresh = file.update(ACCOUNT, async () => {
    asking();
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { change: { kind: 'write', fields: { access_token: 'refreshed' } }, result: undefined };
  });
  await refreshAsking;
  // Meanwhile a sign-in completes and its tokens are saved.
  const save = stored.write(ACCOUNT, { access_token: 'newly authorised' });
  await Promise.all([refresh, save]);
  expect((await file.read(ACCOUNT))?.access_token).toBe('newly authorised');
});

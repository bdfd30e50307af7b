import {
  lstat,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StoredTokenFields } from '../../src/config/types.js';
import { FileTokenStore, TokenStoreError } from '../../src/tokens/stores/file-store.js';
import { eventually } from '../support/eventually.js';

let directory: string;
let path: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'token-store-'));
  path = join(directory, 'tokens.ini');
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const modeOf = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

function tokensFor(account: string): StoredTokenFields {
  return {
    access_token: `gAAAAA-access-${account}`,
    access_token_expiry: '1893456000',
    refresh_token: `gAAAAA-refresh-${account}`,
    token_salt: 'EBESExQVFhcYGRobHB0eHw==',
    token_iterations: '1200000',
    last_activity: '1893369600',
  };
}

describe('reading', () => {
  it('reads a missing file as an empty store', async () => {
    await expect(new FileTokenStore(path).read('a@example.com')).resolves.toBeUndefined();
  });

  it('reads an email-oauth2-proxy cache file, dotted account names literally, token fields only', async () => {
    await writeFile(
      path,
      '[john.smith@example.co.uk]\nclient_id = kept-but-not-a-token\nToken_Salt = c2FsdA==\naccess_token = gAAAAA-x\n\n[other@example.com]\nrefresh_token = gAAAAA-y\n',
    );
    const store = new FileTokenStore(path);
    await expect(store.read('john.smith@example.co.uk')).resolves.toEqual({
      token_salt: 'c2FsdA==',
      access_token: 'gAAAAA-x',
    });
    await expect(store.read('john')).resolves.toBeUndefined();
  });
});

describe('writing', () => {
  it('creates the directory (0700) and the file (0600), and reads back what it wrote', async () => {
    const nested = join(directory, 'config', 'oauth2-mail-proxy', 'tokens.ini');
    const store = new FileTokenStore(nested);
    await store.write('john.smith@example.co.uk', tokensFor('john'));
    await expect(store.read('john.smith@example.co.uk')).resolves.toEqual(tokensFor('john'));
    expect(await modeOf(nested)).toBe(0o600);
    expect(await modeOf(join(directory, 'config', 'oauth2-mail-proxy'))).toBe(0o700);
    expect(await readFile(nested, 'utf8')).toContain('[john.smith@example.co.uk]\n');
  });

  it('leaves the file 0600 even when it was world-readable before', async () => {
    await writeFile(path, '[a@example.com]\naccess_token = old\n', { mode: 0o644 });
    expect(await modeOf(path)).toBe(0o644);
    await new FileTokenStore(path).write('a@example.com', tokensFor('a'));
    expect(await modeOf(path)).toBe(0o600);
  });

  it('writes through a symlinked store, keeping the link', async () => {
    const real = join(directory, 'real.ini');
    await writeFile(real, '');
    await symlink(real, path);
    await new FileTokenStore(path).write('a@example.com', tokensFor('a'));
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(await readFile(real, 'utf8')).toContain('[a@example.com]');
  });

  it('leaves no temporary or lock files behind', async () => {
    const store = new FileTokenStore(path);
    await Promise.all(
      ['a', 'b', 'c'].map((name) => store.write(`${name}@example.com`, tokensFor(name))),
    );
    await store.remove('b@example.com');
    expect(await readdir(directory)).toEqual(['tokens.ini']);
  });

  it('removes the temporary files of a writer killed mid-write, and only those', async () => {
    const abandoned = ['.tokens.ini.0123456789ab.tmp', '.tokens.ini.a1b2c3d4e5f6.tmp'];
    const notOurs = [
      '.tokens.ini.backup.tmp',
      '.other.ini.0123456789ab.tmp',
      'tokens.ini.0123456789ab.tmp',
    ];
    for (const name of [...abandoned, ...notOurs])
      await writeFile(join(directory, name), '[a@example.com]\naccess_token = gAAAAA-old\n', {
        mode: 0o600,
      });
    await new FileTokenStore(path).write('a@example.com', tokensFor('a'));
    expect((await readdir(directory)).sort()).toEqual([...notOurs, 'tokens.ini'].sort());
  });

  it('replaces the token fields of its account only, keeping other keys and other accounts', async () => {
    await writeFile(
      path,
      '[a@example.com]\nclient_id = abc\nrefresh_token = stale\naccess_token = stale\n\n[b@example.com]\naccess_token = b-token\n',
    );
    const store = new FileTokenStore(path);
    await store.write('a@example.com', { access_token: 'fresh', token_salt: 'c2FsdA==' });
    await expect(store.read('a@example.com')).resolves.toEqual({
      access_token: 'fresh',
      token_salt: 'c2FsdA==',
    });
    await expect(store.read('b@example.com')).resolves.toEqual({ access_token: 'b-token' });
    expect(await readFile(path, 'utf8')).toContain('client_id = abc');
  });

  it('keeps every write from two stores on one file writing concurrently', async () => {
    const daemon = new FileTokenStore(path);
    const cli = new FileTokenStore(path);
    const accounts = Array.from({ length: 8 }, (_, index) => `user${index}@example.com`);
    await Promise.all(
      accounts.flatMap((account, index) => [
        (index % 2 === 0 ? daemon : cli).write(account, tokensFor(account)),
        (index % 2 === 0 ? cli : daemon).write(`${account}.second`, tokensFor(`${account}.second`)),
      ]),
    );
    for (const account of accounts) {
      await expect(daemon.read(account)).resolves.toEqual(tokensFor(account));
      await expect(cli.read(`${account}.second`)).resolves.toEqual(tokensFor(`${account}.second`));
    }
  });

  it('applies one store’s writes to the same account in call order', async () => {
    const store = new FileTokenStore(path);
    await Promise.all(
      ['1', '2', '3', '4'].map((generation) =>
        store.write('a@example.com', { access_token: `gen-${generation}` }),
      ),
    );
    await expect(store.read('a@example.com')).resolves.toEqual({ access_token: 'gen-4' });
  });
});

describe('removing', () => {
  it('removes named fields, then the whole section', async () => {
    const store = new FileTokenStore(path);
    await store.write('a@example.com', tokensFor('a'));
    await store.write('b@example.com', tokensFor('b'));
    await store.remove('a@example.com', ['access_token', 'refresh_token']);
    const { access_token: _access, refresh_token: _refresh, ...rest } = tokensFor('a');
    await expect(store.read('a@example.com')).resolves.toEqual(rest);
    await store.remove('a@example.com');
    await expect(store.read('a@example.com')).resolves.toBeUndefined();
    await expect(store.read('b@example.com')).resolves.toEqual(tokensFor('b'));
  });

  it('creates no file when there is nothing to remove', async () => {
    await new FileTokenStore(path).remove('a@example.com');
    expect(await readdir(directory)).toEqual([]);
  });
});

describe('a store it cannot understand', () => {
  const corrupt = '[a@example.com]\naccess_token = keep-me\nthis line is not an ini line\n';

  it('refuses to write, leaving the file byte for byte as it was', async () => {
    await writeFile(path, corrupt, { mode: 0o600 });
    const store = new FileTokenStore(path);
    const failure = await store
      .write('b@example.com', tokensFor('b'))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TokenStoreError);
    expect((failure as TokenStoreError).path).toBe(path);
    expect((failure as TokenStoreError).message).toContain(path);
    await expect(store.remove('a@example.com')).rejects.toThrow(TokenStoreError);
    expect(await readFile(path, 'utf8')).toBe(corrupt);
    expect(await readdir(directory)).toEqual(['tokens.ini']);
  });

  it('reports it on read instead of reading it as empty', async () => {
    await writeFile(path, corrupt);
    await expect(new FileTokenStore(path).read('a@example.com')).rejects.toThrow(TokenStoreError);
  });

  it('reports a path that is not a file', async () => {
    await expect(new FileTokenStore(directory).read('a@example.com')).rejects.toThrow(
      TokenStoreError,
    );
  });

  it('never puts a token value in the message', async () => {
    await writeFile(path, '[a@example.com]\naccess_token = gAAAAA-secret\n[a@example.com]\n');
    const failure = await new FileTokenStore(path)
      .read('a@example.com')
      .catch((error: unknown) => error);
    expect(String((failure as Error).message)).not.toContain('gAAAAA-secret');
  });
});

describe('the lock file', () => {
  it('waits for another process’s lock to go away', async () => {
    await writeFile(`${path}.lock`, '12345@elsewhere\n');
    const store = new FileTokenStore(path);
    let written = false;
    const writing = store.write('a@example.com', tokensFor('a')).then(() => {
      written = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(written).toBe(false);
    await unlink(`${path}.lock`);
    await writing;
    await expect(store.read('a@example.com')).resolves.toEqual(tokensFor('a'));
  });

  it('takes over a lock left by a crashed process once it is stale', async () => {
    await writeFile(`${path}.lock`, '12345@elsewhere\n');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, longAgo, longAgo);
    const store = new FileTokenStore(path);
    await store.write('a@example.com', tokensFor('a'));
    await expect(store.read('a@example.com')).resolves.toEqual(tokensFor('a'));
    expect(await readdir(directory)).toEqual(['tokens.ini']);
  });

  it('gives up with a TokenStoreError when a live lock is held too long', async () => {
    await writeFile(`${path}.lock`, '12345@elsewhere\n');
    const store = new FileTokenStore(path, { timeoutMs: 200 });
    await expect(store.write('a@example.com', tokensFor('a'))).rejects.toThrow(TokenStoreError);
    await expect(store.read('a@example.com')).resolves.toBeUndefined();
  });
});

describe('account names', () => {
  it.each(['DEFAULT', '', 'two\nlines@example.com'])('refuses %j', async (account) => {
    await expect(new FileTokenStore(path).write(account, tokensFor('x'))).rejects.toThrow(
      TokenStoreError,
    );
  });

  it('stores catch-all and odd but legal names', async () => {
    const store = new FileTokenStore(path);
    const names = ['@example.org', '@', 'first.last+tag@sub.example.co.uk', 'a]b@example.com'];
    for (const name of names) await store.write(name, tokensFor(name));
    for (const name of names) await expect(store.read(name)).resolves.toEqual(tokensFor(name));
  });
});

describe('update: deciding under the account’s lock', () => {
  it('lets one writer at a time decide, each seeing what the one before wrote', async () => {
    const [daemon, other] = [new FileTokenStore(path), new FileTokenStore(path)];
    const seen: (string | undefined)[] = [];
    const bump = (store: FileTokenStore): Promise<void> =>
      store.update('a@example.com', async (current) => {
        seen.push(current?.access_token);
        // A refresh takes a while; nobody else may decide for this account meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const fields = { ...tokensFor('a'), access_token: `${current?.access_token ?? ''}+` };
        return { change: { kind: 'write', fields }, result: undefined };
      });
    await Promise.all([bump(daemon), bump(other), bump(daemon)]);
    expect(seen).toEqual([undefined, '+', '++']);
    expect((await daemon.read('a@example.com'))?.access_token).toBe('+++');
    expect(await readdir(directory)).toEqual(['tokens.ini']);
  });

  it('does not hold other accounts back, and keeps or removes as told', async () => {
    const store = new FileTokenStore(path);
    await store.write('a@example.com', tokensFor('a'));
    let release = (): void => undefined;
    const held = store.update('a@example.com', async () => {
      await new Promise<void>((resolve) => (release = resolve));
      return { change: { kind: 'remove' }, result: 'removed' };
    });
    await store.write('b@example.com', tokensFor('b'));
    await expect(store.read('b@example.com')).resolves.toEqual(tokensFor('b'));
    release();
    await expect(held).resolves.toBe('removed');
    await expect(store.read('a@example.com')).resolves.toBeUndefined();
    await expect(
      store.update('b@example.com', () =>
        Promise.resolve({ change: { kind: 'keep' as const }, result: 1 }),
      ),
    ).resolves.toBe(1);
    await expect(store.read('b@example.com')).resolves.toEqual(tokensFor('b'));
  });
});

describe('onChange', () => {
  it('tells of accounts another writer changed, never of its own writes', async () => {
    const store = new FileTokenStore(path);
    await store.write('own@example.com', tokensFor('own'));
    const changed: string[] = [];
    const stop = store.onChange((account) => changed.push(account));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await store.write('own@example.com', tokensFor('own again'));
    await new FileTokenStore(path).write('theirs@example.com', tokensFor('theirs'));
    await eventually(() => expect(changed).toEqual(['theirs@example.com']));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(changed).toEqual(['theirs@example.com']);
    stop();
    await store.close();
  });
});

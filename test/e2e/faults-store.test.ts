/**
 * Fault injection on the token store, through the real daemon and CLI: a store that cannot be
 * read, one that is corrupt, one on a read-only or full filesystem, the daemon killed with SIGKILL
 * while it writes, and a CLI `authorize` writing while the daemon refreshes.
 *
 * What must hold every time: logins are answered (a temporary failure, or a success with tokens
 * in memory), a file the proxy cannot understand is never overwritten, nothing crashes, and after
 * a kill the store holds the old tokens or the new ones, never a torn file.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { Conversation } from '../support/conversation.js';
import { eventsNamed, unexpectedErrors } from '../support/faults/daemon-log.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { refreshTokenWorks, seedStore } from '../support/faults/seeding.js';
import { TestFilesystem } from '../support/faults/small-filesystems.js';
import {
  storeBytes,
  storedFields,
  storedTokens,
  writeLeftovers,
} from '../support/faults/token-files.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const run = promisify(execFile);
const OTHER = 'jane.doe@example.com';
const TEMPORARY = /^a1 NO \[UNAVAILABLE\] /;

let world: World;
const running = new Set<ProxyProcess>();
const mounted = new Set<TestFilesystem>();

beforeAll(async () => {
  world = await World.start();
});
afterAll(async () => {
  await world?.stop();
});
afterEach(async () => {
  for (const proxy of running) await proxy.stop('SIGKILL');
  running.clear();
  for (const filesystem of mounted) await filesystem.unmount();
  mounted.clear();
});

/** A fresh directory for one case's config.ini and tokens.ini. */
function caseDir(name: string): Promise<string> {
  return mkdtemp(join(world.dir, `${name}-`));
}

/**
 * A daemon whose config.ini and tokens.ini are in `dir`. Its control socket is kept out of `dir`,
 * which may be read-only; a CLI finds it with {@link ProxyProcess.cli}.
 */
async function daemonIn(dir: string): Promise<ProxyProcess> {
  const proxy = await ProxyProcess.start({
    dir,
    config: world.config(world.accountSection(OTHER)),
    args: [
      '--authorisation-wait',
      '0',
      '--control-socket',
      join(world.dir, `${randomBytes(4).toString('hex')}.sock`),
    ],
  });
  running.add(proxy);
  await proxy.ready();
  return proxy;
}

/** Stops the daemon as a service manager would; it must exit cleanly and have logged nothing unexpected. */
async function stopsCleanly(proxy: ProxyProcess): Promise<void> {
  expect(await proxy.stop()).toBe(0);
  running.delete(proxy);
  expect(unexpectedErrors(proxy)).toEqual([]);
}

const refreshes = (): number => world.idp.tokenRequests.byGrantType.refresh_token ?? 0;

describe('a token store the daemon cannot read', () => {
  it('a directory where the file should be: UNAVAILABLE naming the file, and logins work once it is a file again', async () => {
    const dir = await caseDir('directory');
    const store = join(dir, 'tokens.ini');
    await mkdir(store);
    const proxy = await daemonIn(dir);

    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(
      new RegExp(
        `^a1 NO \\[UNAVAILABLE\\] The proxy cannot read its token store: Token store ${store}: cannot read it: it is not a regular file; move it away and the proxy starts a new store$`,
      ),
    );
    await vi.waitFor(() => expect(eventsNamed(proxy, 'token_store_unreadable')).toHaveLength(1));

    await rm(store, { recursive: true });
    await seedStore(world, store, USER);
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
    await stopsCleanly(proxy);
  });

  it('a FIFO where the file should be (a read that never returns, as on a dead network mount): logins are still answered', async () => {
    const dir = await caseDir('fifo');
    const store = join(dir, 'tokens.ini');
    await run('mkfifo', ['-m', '600', store]);
    const proxy = await daemonIn(dir);
    try {
      const replies = await Promise.all(
        [USER, OTHER].map((user) =>
          loginReply(world.imapPort, user, PASSWORD, 5_000).catch((error: Error) => error.message),
        ),
      );
      expect(replies).toEqual([expect.stringMatching(TEMPORARY), expect.stringMatching(TEMPORARY)]);
    } finally {
      // Reads still blocked in the proxy end with an empty file before it is killed.
      const writer = await open(store, constants.O_WRONLY | constants.O_NONBLOCK).catch(
        () => undefined,
      );
      await writer?.close();
    }
    expect(proxy.child.exitCode).toBeNull();
  });
});

describe('a corrupt token store', () => {
  it('garbage bytes: UNAVAILABLE saying so, the file is never rewritten, not even by a CLI authorize', async () => {
    const dir = await caseDir('garbage');
    const store = join(dir, 'tokens.ini');
    const garbage = Buffer.concat([
      randomBytes(1500),
      Buffer.from('\n[half a section\naccess_token = \0\0\0\n'),
    ]);
    await writeFile(store, garbage, { mode: 0o600 });
    const proxy = await daemonIn(dir);

    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(
      new RegExp(
        `^a1 NO \\[UNAVAILABLE\\] The proxy cannot read its token store: Token store ${store}: cannot parse it \\(.+\\); it is left untouched and no tokens will be saved until it is repaired or moved away$`,
      ),
    );
    await vi.waitFor(() => expect(eventsNamed(proxy, 'token_store_unreadable')).toHaveLength(1));

    // The CLI with no daemon to talk to writes the store itself: it must refuse, and say why.
    const authorize = ProxyProcess.command(
      ['authorize', OTHER, '--control-socket', join(dir, 'no-daemon.sock')],
      proxy,
    );
    const [, url] = await authorize.waitFor(/sign in:\n(\S+)\n/);
    authorize.type(`${await world.idp.browser(url!, OTHER)}\n`);
    await authorize.waitFor(/Password your mail client uses/);
    authorize.type(`${PASSWORD}\n`);
    expect(await authorize.exit()).not.toBe(0);
    expect(authorize.output).toContain(`Token store ${store}: cannot parse it`);
    // Said in words, not as a crash.
    expect.soft(authorize.output).not.toMatch(/^\s+at /m);

    expect(await storeBytes(store)).toEqual(garbage);
    expect(await writeLeftovers(store)).toEqual([]);
    await stopsCleanly(proxy);
  });

  it('an account whose token fields are garbage: that account needs authorising, the file is left as it is', async () => {
    const dir = await caseDir('garbage-fields');
    const store = join(dir, 'tokens.ini');
    await seedStore(world, store, OTHER);
    const text = `${(await readFile(store, 'utf8')).trimEnd()}\n\n[${USER}]\naccess_token = not a fernet token\naccess_token_expiry = 4102444800\nrefresh_token = neither\ntoken_salt = c2FsdA==\ntoken_iterations = 1200000\n`;
    await writeFile(store, text, { mode: 0o600 });
    const proxy = await daemonIn(dir);

    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(
      new RegExp(
        `^a1 NO \\[UNAVAILABLE\\] ${USER} needs authorising: run: oauth2-mail-proxy authorize ${USER} `,
      ),
    );
    await vi.waitFor(() =>
      expect(eventsNamed(proxy, 'tokens_unreadable')).toMatchObject([{ account: USER }]),
    );
    expect(await readFile(store, 'utf8')).toBe(text);
    await stopsCleanly(proxy);
  });
});

describe('a token store on a filesystem that refuses writes', () => {
  it.each(['read-only', 'full'] as const)(
    'a %s filesystem: a refresh still logs in, the file stays as it was, the new tokens are kept in memory',
    async (fault) => {
      const dir = join(world.dir, `${fault}-fs`);
      const filesystem = await TestFilesystem.mount(dir, 64);
      mounted.add(filesystem);
      const store = join(dir, 'tokens.ini');
      await seedStore(world, store, USER, { expired: true });
      const proxy = await daemonIn(dir);
      if (fault === 'read-only') await filesystem.readOnly();
      else await filesystem.fillUp();
      const before = await storeBytes(store);
      world.idp.resetTokenRequests();

      expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
      expect(refreshes()).toBe(1);
      await vi.waitFor(() =>
        expect(eventsNamed(proxy, 'token_store_write_failed')).toMatchObject([{ account: USER }]),
      );
      expect(await storeBytes(store)).toEqual(before);
      // A retry of the write (the tokens kept in memory) may hold the lock for a moment; nothing stays.
      await vi.waitFor(async () => expect(await writeLeftovers(store)).toEqual([]));

      // The refresh rotated the refresh token; the one on disk is now dead. Only the daemon's
      // memory holds the live one, so the next login must use it rather than the file.
      expect.soft(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
      expect.soft(refreshes()).toBe(1);

      if (fault === 'read-only') await filesystem.writable();
      else await filesystem.makeRoom();
      expect.soft(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
      await stopsCleanly(proxy);
    },
  );
});

/** How old a lock file must be to be taken over (the file store's default). */
const STALE_LOCK_MS = 10_000;

describe('the daemon killed with SIGKILL while it writes refreshed tokens', () => {
  const ROUNDS = 12;

  // Each round starts a daemon and logs in: seconds apiece on a loaded machine. A safety bound.
  const timeout = ROUNDS * 20_000;

  it(
    `leaves the old tokens or the new ones, never a torn file (${ROUNDS} kills at random moments around the write)`,
    { timeout },
    async () => {
      for (let round = 0; round < ROUNDS; round += 1) {
        const dir = await caseDir(`kill-${round}`);
        const store = join(dir, 'tokens.ini');
        const seeded = await seedStore(world, store, USER, { expired: true });
        const old = await storedFields(store, USER);
        const proxy = await daemonIn(dir);

        const client = await Conversation.connect(world.imapPort);
        await client.expect(/^\* OK /);
        client.send(`a1 LOGIN "${USER}" "${PASSWORD}"`);
        await proxy.waitFor(/"event":"token_refreshed"/);
        // The lock is taken some 10 ms after the log line and the file replaced 10 to 50 ms after
        // it (measured here): kills spread over 60 ms land before, during and after the write.
        await sleep(Math.floor(Math.random() * 60));
        proxy.child.kill('SIGKILL');
        await proxy.exit();
        running.delete(proxy);
        client.close();

        const fields = await storedFields(store, USER);
        if (JSON.stringify(fields) !== JSON.stringify(old)) {
          const tokens = await storedTokens(store, USER, PASSWORD);
          expect(tokens.refreshToken).toBeDefined();
          expect(tokens.refreshToken).not.toBe(seeded.refreshToken);
          expect(tokens.expiry).toBeGreaterThan(Date.now() / 1000 + 600);
        }
        // A temporary file of a write cut short is never read, and as private as the store.
        for (const leftover of (await writeLeftovers(store)).filter((name) =>
          name.endsWith('.tmp'),
        )) {
          expect((await stat(join(dir, leftover))).mode & 0o777).toBe(0o600);
        }
        // The next write (a CLI's, say, taking over the lock the kill may have left) tidies them away.
        await new FileTokenStore(store, { staleMs: 0 }).write('next.writer@example.com', old ?? {});
        expect(await writeLeftovers(store)).toEqual([]);
      }
    },
  );

  it('a lock file left by a killed writer holds the next write back only until it is stale, and nothing is lost', async () => {
    const dir = await caseDir('stale-lock');
    const store = join(dir, 'tokens.ini');
    await seedStore(world, store, USER, { expired: true });
    // As a writer killed while holding the lock leaves it: its pid, no longer running; 9 s old.
    const lock = `${store}.lock`;
    await writeFile(lock, '999999@dead-host\n', { mode: 0o600 });
    const nineSecondsAgo = new Date(Date.now() - (STALE_LOCK_MS - 1_000));
    await utimes(lock, nineSecondsAgo, nineSecondsAgo);
    const proxy = await daemonIn(dir);
    world.idp.resetTokenRequests();

    const started = Date.now();
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
    // The lock turns stale 1 s after the login began; waiting out a whole staleness period of its
    // own would be the bug. The margin is for a loaded machine, not a performance target.
    expect(Date.now() - started).toBeLessThan(STALE_LOCK_MS - 500);
    const tokens = await storedTokens(store, USER, PASSWORD);
    expect(await refreshTokenWorks(world, tokens.refreshToken ?? '')).toBe(true);
    expect(await writeLeftovers(store)).toEqual([]);
    await stopsCleanly(proxy);
  });
});

describe('a CLI authorize writing while the daemon refreshes', () => {
  it.each([
    ['another account', OTHER],
    ['the same account', USER],
  ])(
    'for %s: both writes land, one after the other, and every stored token works',
    async (_which, authorised) => {
      const dir = await caseDir('race');
      const store = join(dir, 'tokens.ini');
      const seeded = await seedStore(world, store, USER, { expired: true });
      const proxy = await daemonIn(dir);

      // The CLI finds no daemon on this control socket, so it runs the flow and writes the store itself.
      const authorize = ProxyProcess.command(
        ['authorize', authorised, '--control-socket', join(dir, 'no-daemon.sock')],
        proxy,
      );
      const [, url] = await authorize.waitFor(/sign in:\n(\S+)\n/);
      authorize.type(`${await world.idp.browser(url!, authorised)}\n`);
      await authorize.waitFor(/Password your mail client uses/);

      // Both writers queue behind a lock held here, then go the moment it is released.
      const lock = `${store}.lock`;
      await writeFile(lock, `${process.pid}@test\n`, { flag: 'wx', mode: 0o600 });
      authorize.type(`${PASSWORD}\n`);
      const login = loginReply(world.imapPort, USER, PASSWORD);
      await proxy.waitFor(/"event":"token_refreshed"/);
      await sleep(2_000); // the CLI derives its key (1.2 million PBKDF2 rounds) and waits for the lock
      expect(authorize.output).not.toMatch(/Authorised/);
      await rm(lock);

      expect(await login).toMatch(/^a1 OK /);
      expect(await authorize.exit()).toBe(0);
      expect(authorize.output).toContain(`Authorised ${authorised}; tokens stored in ${store}.`);

      const daemonTokens = await storedTokens(store, USER, PASSWORD);
      expect(daemonTokens.refreshToken).not.toBe(seeded.refreshToken);
      if (authorised !== USER) {
        const cliTokens = await storedTokens(store, OTHER, PASSWORD);
        expect(await refreshTokenWorks(world, cliTokens.refreshToken ?? '')).toBe(true);
      }
      // Whichever write came last, USER's stored tokens are one consistent, live set.
      expect(await refreshTokenWorks(world, daemonTokens.refreshToken ?? '')).toBe(true);
      expect(await writeLeftovers(store)).toEqual([]);
      await stopsCleanly(proxy);
    },
  );
});

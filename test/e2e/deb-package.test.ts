import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient, type CommandResult } from '../support/clients.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * The Debian package as an administrator gets it: built by `npm run package:deb`, checked by
 * lintian, installed on this machine with `apt-get install ./...deb`, its units verified, its
 * command logging a mail client in through the test peers, then removed and purged. It changes
 * the machine (a package, a system user), so it runs as root, refuses to run where the package
 * is or was installed, and cleans up after itself. Its `Depends: nodejs (>= 20)` is met by whatever nodejs
 * package the machine has (NodeSource's here; Debian 12's own is Node 18, which it must refuse).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NAME = 'oauth2-mail-proxy';
const CONFIG_DIR = `/etc/${NAME}`;
const STATE_DIR = `/var/lib/${NAME}`;
const SYSTEM_UNIT = `/usr/lib/systemd/system/${NAME}.service`;
const USER_UNIT = `/usr/lib/systemd/user/${NAME}.service`;

let dir: string;
/** Set once the checks pass: from then on the package, user and folders are the test's. */
let ours = false;
let deb: string;
let userExisted: boolean;

const apt = (...args: string[]): Promise<CommandResult> =>
  runClient('apt-get', ['-y', '-o', 'DPkg::Lock::Timeout=300', ...args], {
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    timeoutMs: 360_000,
  });

const packageStatus = async (): Promise<string> =>
  (await runClient('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', NAME])).stdout.trim();

const systemUser = async (): Promise<boolean> =>
  (await runClient('getent', ['passwd', NAME])).code === 0;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the .deb test installs a package: run it as root');
  // A real installation's config and tokens must never be touched by a test: refuse instead.
  if ((await packageStatus()) !== '' || existsSync(CONFIG_DIR) || existsSync(STATE_DIR))
    throw new Error(
      `${NAME} is (or was) installed here: ${CONFIG_DIR} or ${STATE_DIR} exists. Run this test on a ` +
        `test machine, or, if they are left from an interrupted run of it: apt-get purge ${NAME}; ` +
        `rm -r ${CONFIG_DIR} ${STATE_DIR}`,
    );
  ours = true;
  dir = await mkdtemp(join(tmpdir(), 'omp-deb-'));
  userExisted = await systemUser();
  const built = await runClient('bash', ['packaging/build-deb.sh', dir], {
    cwd: ROOT,
    timeoutMs: 300_000,
  });
  expect(built.code, built.stderr).toBe(0);
  deb = built.stdout.trim().split('\n').at(-1)!;
}, 360_000);

afterAll(async () => {
  if (!ours) return;
  if ((await packageStatus()) !== '') await apt('purge', NAME);
  await rm(join(CONFIG_DIR, 'config.ini'), { force: true });
  await rmdir(CONFIG_DIR).catch(() => undefined); // only when empty: nothing else was ours
  await rm(STATE_DIR, { recursive: true, force: true });
  if (!userExisted && (await systemUser())) await runClient('userdel', [NAME]);
  await rm(dir, { recursive: true, force: true });
}, 360_000);

describe('the Debian package', () => {
  it('is named for its version, depends on Node 20 or later, and lintian finds no errors or warnings', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(deb).toBe(join(dir, `${NAME}_${version}_all.deb`));
    const control = await runClient('dpkg-deb', ['--field', deb]);
    expect(control.stdout).toMatch(/^Depends: nodejs \(>= 20\)/m);
    expect(control.stdout).toMatch(/^Architecture: all$/m);

    const lintian = await runClient('lintian', [deb], { timeoutMs: 180_000 });
    expect(lintian.stdout.split('\n').filter((line) => /^[EW]: /.test(line))).toEqual([]);
  }, 200_000);

  it('holds the program, the command, both units, the sysusers file, the docs and the man page', async () => {
    const listing = (await runClient('dpkg-deb', ['--contents', deb])).stdout;
    const entry = (path: string): string =>
      listing.split('\n').find((line) => line.endsWith(` .${path}`)) ?? `(no ${path})`;
    expect(entry(`/usr/bin/${NAME}`)).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry(`/usr/lib/${NAME}/dist/cli/main.js`)).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry(`/usr/lib/${NAME}/node_modules/commander/package.json`)).toMatch(/^-rw-r--r--/);
    expect(entry(SYSTEM_UNIT)).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry(USER_UNIT)).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry(`/usr/lib/sysusers.d/${NAME}.conf`)).toMatch(/^-rw-r--r-- /);
    expect(entry(`/usr/share/doc/${NAME}/examples/config.example.ini`)).toMatch(/^-rw-r--r-- /);
    expect(entry(`/usr/share/man/man1/${NAME}.1.gz`)).toMatch(/^-rw-r--r-- /);
    expect(entry(`${CONFIG_DIR}/`)).toMatch(/^drwxr-xr-x root\/root /);
    // Development dependencies and sources stay out.
    expect(listing).not.toMatch(/node_modules\/(vitest|typescript|oidc-provider)\//);
    expect(listing).not.toMatch(/\/usr\/lib\/oauth2-mail-proxy\/(src|test)\//);
  });

  it('installs with apt-get, creates the system user, and starts or enables nothing', async () => {
    const installed = await apt('install', deb);
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    expect(await packageStatus()).toBe('ii');
    const passwd = (await runClient('getent', ['passwd', NAME])).stdout;
    expect(passwd).toMatch(
      new RegExp(`^${NAME}:x:\\d+:\\d+:[^:]*:${STATE_DIR}:/usr/sbin/nologin$`, 'm'),
    );
    expect(existsSync(`/etc/systemd/system/multi-user.target.wants/${NAME}.service`)).toBe(false);
    expect((await runClient('pgrep', ['-u', NAME])).stdout).toBe('');

    const version = await runClient(`/usr/bin/${NAME}`, ['--version']);
    expect(version.code).toBe(0);
  }, 400_000);

  it('installs units that systemd-analyze verifies without a complaint, running the installed command', async () => {
    const unit = await readFile(SYSTEM_UNIT, 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStart=/usr/bin/${NAME} run `, 'm'));
    const system = await runClient('systemd-analyze', ['verify', SYSTEM_UNIT]);
    expect(system).toMatchObject({ code: 0, stderr: '' });

    const runtime = join(dir, 'runtime');
    await mkdir(runtime, { mode: 0o700 });
    const user = await runClient('systemd-analyze', ['--user', 'verify', USER_UNIT], {
      env: { XDG_RUNTIME_DIR: runtime },
    });
    expect(user).toMatchObject({ code: 0, stderr: '' });
  });

  it('installs a man page that man shows', async () => {
    const page = await runClient('man', ['-P', 'cat', NAME], { env: { MANWIDTH: '100' } });
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout).toMatch(/^NAME\n\s+oauth2-mail-proxy - /m);
    expect(page.stdout).toContain('--config-file');
  });

  it('logs a mail client in to the real server through the installed command', async () => {
    const world = await World.start();
    try {
      await world.seedTokens();
      const proxy = await ProxyProcess.start({
        dir: world.dir,
        config: world.config(),
        program: `/usr/bin/${NAME}`,
      });
      await proxy.ready();
      const listed = await runClient('curl', [
        '-sS',
        '--max-time',
        '30',
        '--user',
        `${USER}:${PASSWORD}`,
        `imap://127.0.0.1:${world.imapPort}/`,
      ]);
      expect(listed.code, listed.stderr + proxy.output).toBe(0);
      expect(listed.stdout).toMatch(/^\* LIST .* "?INBOX"?\r?$/m);
      expect(await proxy.stop()).toBe(0);
    } finally {
      await world.stop();
    }
  }, 120_000);

  it('keeps the configuration and the token store through an upgrade, removal and purge', async () => {
    const config = join(CONFIG_DIR, 'config.ini');
    const tokens = join(STATE_DIR, 'tokens.ini');
    await writeFile(config, '[IMAP-1993]\nserver_address = outlook.office365.com\n', {
      mode: 0o600,
    });
    await mkdir(STATE_DIR, { recursive: true, mode: 0o700 });
    await writeFile(tokens, '[john.smith@example.com]\ntoken_salt = kept\n', { mode: 0o600 });
    await runClient('chown', ['-R', `${NAME}:${NAME}`, config, STATE_DIR]);
    const before = { mode: (await stat(config)).mode, uid: (await stat(config)).uid };

    const reinstalled = await apt('install', '--reinstall', deb);
    expect(reinstalled.code, reinstalled.stderr).toBe(0);
    const removed = await apt('remove', NAME);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await packageStatus()).toBe('rc');
    expect(existsSync(`/usr/bin/${NAME}`)).toBe(false);
    expect(existsSync(SYSTEM_UNIT)).toBe(false);
    expect(existsSync(`/usr/lib/${NAME}`)).toBe(false);

    const purged = await apt('purge', NAME);
    expect(purged.code, purged.stderr).toBe(0);
    expect(await packageStatus()).toBe('');
    expect(existsSync(`/usr/share/doc/${NAME}`)).toBe(false);
    expect(await readFile(config, 'utf8')).toContain('outlook.office365.com');
    expect({ mode: (await stat(config)).mode, uid: (await stat(config)).uid }).toEqual(before);
    expect(await readFile(tokens, 'utf8')).toContain('token_salt = kept');
    expect(await systemUser()).toBe(true);
  }, 400_000);

  it('purged with no configuration written, leaves no trace in /etc', async () => {
    await rm(join(CONFIG_DIR, 'config.ini'), { force: true });
    expect((await apt('install', deb)).code).toBe(0);
    expect((await apt('purge', NAME)).code).toBe(0);
    expect(existsSync(CONFIG_DIR)).toBe(false);
  }, 400_000);
});

/**
 * The shipped systemd units, checked by systemd's own tools (systemd-analyze verify exits 0 on
 * warnings, so anything it prints is a failure), plus the settings docs/service.md promises.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROXY_BIN = join(ROOT, 'dist/cli/main.js');
const INSTALLED_COMMAND = '/usr/local/bin/oauth2-mail-proxy';

const UNITS = {
  system: join(ROOT, 'systemd/oauth2-mail-proxy.service'),
  user: join(ROOT, 'systemd/user/oauth2-mail-proxy.service'),
} as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-units-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `[Section]` → key → values (a key may repeat), comments and blank lines dropped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const equals = line.indexOf('=');
    const key = line.slice(0, equals);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(equals + 1)]);
  }
  return sections;
}

/**
 * A copy of the unit whose ExecStart runs the built CLI with this Node, under the unit's own file
 * name (verify names the unit after the file): the installed path does not exist on a build machine.
 */
async function runnableCopy(kind: keyof typeof UNITS): Promise<string> {
  const text = await readFile(UNITS[kind], 'utf8');
  expect(text).toMatch(new RegExp(`^ExecStart=${INSTALLED_COMMAND} run\\b`, 'm'));
  const target = join(dir, kind, 'oauth2-mail-proxy.service');
  await mkdir(join(dir, kind), { recursive: true });
  await writeFile(
    target,
    text.replace(`ExecStart=${INSTALLED_COMMAND} `, `ExecStart=${process.execPath} ${PROXY_BIN} `),
  );
  return target;
}

/** systemd-analyze, with a runtime directory for `--user` (it needs one, owner-only). */
async function analyze(
  kind: keyof typeof UNITS,
  args: string[],
): Promise<{ stdout: string; stderr: string }> {
  const runtime = join(dir, 'runtime');
  await mkdir(runtime, { recursive: true, mode: 0o700 });
  return run('systemd-analyze', [...(kind === 'user' ? ['--user'] : []), ...args], {
    env: { ...process.env, XDG_RUNTIME_DIR: runtime },
  });
}

describe.each(['system', 'user'] as const)('the %s unit', (kind) => {
  it('passes systemd-analyze verify without a word', async () => {
    const { stdout, stderr } = await analyze(kind, ['verify', await runnableCopy(kind)]);
    expect(stderr).toBe('');
    expect(stdout).toBe('');
  });

  it('waits for readiness, reloads with SIGHUP, restarts on failure and creates files owner-only', async () => {
    const service = parseUnit(await readFile(UNITS[kind], 'utf8')).get('Service')!;
    expect(service.get('Type')).toEqual(['notify']);
    // The readiness message comes from systemd-notify, a child process.
    expect(service.get('NotifyAccess')).toEqual(['all']);
    expect(service.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(service.get('Restart')).toEqual(['on-failure']);
    expect(service.get('RestartPreventExitStatus')).toEqual(['2 3']);
    expect(service.get('UMask')).toEqual(['0077']);
    expect(service.get('NoNewPrivileges')).toEqual(['yes']);
    expect(service.get('RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
    expect(service.get('SystemCallFilter')).toEqual([
      '@system-service @pkey',
      '~@privileged @resources',
    ]);
    // Longer than the default --shutdown-grace (10 s) plus the token writes after it.
    expect(parseInt(service.get('TimeoutStopSec')![0]!, 10)).toBeGreaterThan(15);
  });
});

describe('the system unit', () => {
  it('runs as its own user with the config in ConfigurationDirectory and the tokens in StateDirectory', async () => {
    const unit = parseUnit(await readFile(UNITS.system, 'utf8'));
    const service = unit.get('Service')!;
    expect(unit.get('Unit')!.get('After')).toEqual(['network-online.target']);
    expect(unit.get('Unit')!.get('Wants')).toEqual(['network-online.target']);
    expect(service.get('User')).toEqual(['oauth2-mail-proxy']);
    expect(service.get('StateDirectory')).toEqual(['oauth2-mail-proxy']);
    expect(service.get('StateDirectoryMode')).toEqual(['0700']);
    expect(service.get('ConfigurationDirectory')).toEqual(['oauth2-mail-proxy']);
    expect(service.get('ExecStart')).toEqual([
      `${INSTALLED_COMMAND} run --config-file %E/oauth2-mail-proxy/config.ini --cache-store %S/oauth2-mail-proxy/tokens.ini`,
    ]);
    for (const [key, value] of [
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['PrivateUsers', 'yes'],
      ['CapabilityBoundingSet', ''],
      ['RestrictNamespaces', 'yes'],
      ['LockPersonality', 'yes'],
      ['SystemCallArchitectures', 'native'],
    ] as const) {
      expect(service.get(key), key).toEqual([value]);
    }
  });

  it('has the systemd-analyze security exposure docs/service.md states', async () => {
    const { stdout } = await analyze('system', [
      'security',
      '--offline=true',
      await runnableCopy('system'),
    ]);
    const exposure = /Overall exposure level for oauth2-mail-proxy\.service: (\d+\.\d) (\w+)/.exec(
      stdout,
    );
    expect(exposure, stdout).not.toBeNull();
    const readme = await readFile(join(ROOT, 'docs/service.md'), 'utf8');
    expect(readme).toContain(
      `systemd-analyze security\` exposure level of **${exposure![1]} ${exposure![2]}**`,
    );
    expect(Number(exposure![1])).toBeLessThanOrEqual(1.5);
  });

  it('comes with a sysusers.d entry for its user', async () => {
    const root = join(dir, 'sysroot');
    await mkdir(root, { recursive: true });
    const file = join(ROOT, 'systemd/sysusers.d/oauth2-mail-proxy.conf');
    // --root and --dry-run: nothing is written, here or on the host.
    const { stdout, stderr } = await run('systemd-sysusers', [`--root=${root}`, '--dry-run', file]);
    expect(stdout + stderr).toContain(
      "Creating user 'oauth2-mail-proxy' (oauth2-mail-proxy daemon)",
    );
  });
});

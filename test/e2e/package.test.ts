import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';

/**
 * What a user who installs the package gets: `npm pack` as a release would make it, installed
 * into an empty folder with npm, and its `oauth2-mail-proxy` command run there, directly and
 * through `npx`. The pack skips the build scripts: `npm test` has just built `dist/`, and a
 * rebuild would pull it from under the end-to-end tests running beside this one.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
let tarball: string;
let packedFiles: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-package-'));
  const packed = await runClient(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    { cwd: ROOT, timeoutMs: 120_000 },
  );
  expect(packed.code).toBe(0);
  const [manifest] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(dir, manifest.filename);
  packedFiles = manifest.files.map((file) => file.path);
}, 180_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds the built command, the example config, the units and the docs, and no sources or tests', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'dist/cli/main.js',
        'config.example.ini',
        'README.md',
        'package.json',
        'docs/security.md',
      ]),
    );
    expect(packedFiles.some((path) => path.startsWith('systemd/'))).toBe(true);
    expect(
      packedFiles.filter((path) => /^(src|test|bench)\//.test(path) || path.endsWith('.test.js')),
    ).toEqual([]);
  });

  it('installs with npm into an empty folder, and its command runs there and through npx', async () => {
    const installed = await runClient(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball],
      { cwd: dir, timeoutMs: 300_000 },
    );
    expect(installed.stderr).not.toMatch(/npm (ERR|error)/);
    expect(installed.code).toBe(0);

    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const direct = await runClient(join(dir, 'node_modules', '.bin', 'oauth2-mail-proxy'), [
      '--version',
    ]);
    expect(direct).toMatchObject({ code: 0, stdout: `${version}\n` });

    const help = await runClient(
      'npx',
      ['--no-install', 'oauth2-mail-proxy', 'authorize', '--help'],
      { cwd: dir },
    );
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: oauth2-mail-proxy authorize \[options\] <account>/m);
  }, 360_000);
});

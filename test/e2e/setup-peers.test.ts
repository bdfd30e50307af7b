import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';

/**
 * `npm test` starts with test/setup-peers.sh: every Debian package the real peers come from must
 * be there, because a missing peer fails tests rather than skipping them, and the suite needs root.
 * A normal user is stopped at once, with the one line to run as root when packages are missing;
 * here that user is `nobody`, as on any Debian machine.
 */
const SCRIPT = fileURLToPath(new URL('../setup-peers.sh', import.meta.url));
const MISSING = 'oauth2-mail-proxy-test-no-such-package';

let dir: string;

const asNobody = (list?: string) =>
  runClient('runuser', ['-u', 'nobody', '--', 'sh', SCRIPT], {
    env: list ? { TEST_PEERS_PACKAGE_LIST: list } : {},
    timeoutMs: 30_000,
  });

beforeAll(async () => {
  if (process.getuid?.() !== 0)
    throw new Error('these tests switch to the nobody user: run as root');
  dir = await mkdtemp(join(tmpdir(), 'omp-setup-'));
  await chmod(dir, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the test command's setup", () => {
  it('stops a normal user at once, when every package is installed, saying the suite runs as root', async () => {
    const setup = await asNobody();
    expect(setup).toMatchObject({ code: 1, stdout: '' });
    expect(setup.stderr).toMatch(/^The test suite runs as root .*: sudo npm test\n$/);
  });

  it('passes for root when every package of the list is installed, installing nothing', async () => {
    const setup = await runClient('sh', [SCRIPT], { timeoutMs: 30_000 });
    expect(setup).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('stops a normal user at once with the one apt-get line, naming only what is missing', async () => {
    const list = join(dir, 'packages.txt');
    await writeFile(list, `# a comment\ncurl ${MISSING}\npython3\n`, { mode: 0o644 });
    const started = Date.now();
    const setup = await asNobody(list);
    expect(setup.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(setup.stdout).toBe('');
    const lines = setup.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/missing\. Run as root, then npm test again:$/),
      `  apt-get update && apt-get install -y --no-install-recommends ${MISSING}`,
    ]);
  });
});

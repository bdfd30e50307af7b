import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { eventually } from '../support/eventually.js';

/** The daemon's logger writing to a file, as with `--log-file`; each test reads back what it wrote. */
let dir: string;
let file: string;
let log: Logger;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-log-'));
  file = join(dir, 'proxy.log');
  log = createLogger({ debug: false, file, pretty: false });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The lines written once `count` have arrived (the file is opened and written asynchronously). */
async function written(count: number): Promise<string[]> {
  return eventually(async () => {
    log.flush();
    const lines = (await readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line !== '');
    expect(lines.length).toBeGreaterThanOrEqual(count);
    return lines;
  });
}

const parsed = (line: string | undefined): Record<string, unknown> =>
  JSON.parse(line ?? '{}') as Record<string, unknown>;

describe('the log', () => {
  it('shows the OAuth error code of a failure, and redacts an authorization code', async () => {
    log.warn(
      {
        event: 'refresh_failed',
        account: 'john.smith@example.com',
        kind: 'reauthorise',
        code: 'invalid_grant',
        aadsts: 700082,
      },
      'Refreshing the access token failed: invalid_grant',
    );
    log.warn({ event: 'request_failed', code: 'ECONNREFUSED' }, 'x');
    const authorizationCode = `M.C507_BAY.2.U.${'a1b2c3d4'.repeat(12)}`;
    log.info(
      { event: 'pasted', code: authorizationCode, pasted: { code: authorizationCode } },
      'y',
    );
    log.info({ event: 'pasted', code: '4/0AVG7fiQ-short' }, 'z');

    const lines = await written(4);
    expect(parsed(lines[0])).toMatchObject({
      level: 40,
      event: 'refresh_failed',
      account: 'john.smith@example.com',
      kind: 'reauthorise',
      code: 'invalid_grant',
      aadsts: 700082,
    });
    expect(parsed(lines[1])).toMatchObject({ code: 'ECONNREFUSED' });
    expect(parsed(lines[2])).toMatchObject({
      code: '[redacted]',
      pasted: { code: '[redacted]' },
    });
    expect(parsed(lines[3])).toMatchObject({ code: '[redacted]' });
    expect(lines.join('\n')).not.toContain('a1b2c3d4');
    expect(lines.join('\n')).not.toContain('AVG7');
  });

  it('escapes control characters in every field and in the message, so one call is one line', async () => {
    const forged = 'mallory\r\n{"level":30,"msg":"forged"}\x1b[2J\u0085\u2028\x7f\t';
    log.info({ event: 'login_refused', user: forged, nested: { reply: forged } }, forged);
    log.child({ conn: forged }).warn({ event: 'upstream_refused' }, 'server said %s', forged);

    const lines = await written(2);
    expect(lines).toHaveLength(2);
    const escaped = 'mallory\\r\\n{"level":30,"msg":"forged"}\\x1b[2J\\x85\\u2028\\x7f\\t';
    expect(parsed(lines[0])).toMatchObject({
      user: escaped,
      nested: { reply: escaped },
      msg: escaped,
    });
    expect(parsed(lines[1])).toMatchObject({ conn: escaped, msg: `server said ${escaped}` });
    expect(lines.join('\n')).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
  });
});

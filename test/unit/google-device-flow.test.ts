/**
 * Google's device flow grants no mail scope: a Gmail account configured with it can never get a
 * usable token. `check` fails it and start-up warns, naming the flow that works.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';
import { configChecks } from '../../src/doctor/config-checks.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-google-device-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SERVER = '[IMAP-1993]\nserver_address = imap.gmail.com\nserver_port = 993\n';
const gmail = (flow: string): string =>
  '[someone@gmail.com]\npermission_url = https://accounts.google.com/o/oauth2/auth\n' +
  'token_url = https://oauth2.googleapis.com/token\noauth2_scope = https://mail.google.com/\n' +
  `redirect_uri = http://localhost\nclient_id = c.apps.googleusercontent.com\nclient_secret = s\noauth2_flow = ${flow}\n`;

it('start-up warns about a Gmail account on the device flow, and not about one on the code flow', async () => {
  const file = join(dir, 'config.ini');
  const device = await startupWarnings(
    parseConfig(SERVER + gmail('device'), file),
    join(dir, 't.ini'),
  );
  expect(device.join('\n')).toContain(
    '[someone@gmail.com] uses oauth2_flow = device with Google, whose device flow does not grant mail scopes',
  );
  const code = await startupWarnings(
    parseConfig(SERVER + gmail('authorization_code'), file),
    join(dir, 't.ini'),
  );
  expect(code.join('\n')).not.toContain('device flow');
});

it('check fails the device flow for a Gmail account and says which flow to use', () => {
  const config = parseConfig(SERVER + gmail('device'), 'config.ini');
  const results = configChecks(config, config.accounts[0]!);
  expect(results).toContainEqual(
    expect.objectContaining({
      status: 'fail',
      title: 'flow: Google device flow has no mail scopes',
      details: [expect.stringContaining('use oauth2_flow = authorization_code')],
    }),
  );
});

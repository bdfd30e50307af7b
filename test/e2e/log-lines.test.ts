import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { python } from '../support/clients.js';
import { Conversation } from '../support/conversation.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * What the built daemon's log says about failures and hostile names, read where an operator
 * reads it: the `--log-file` (JSON lines) and a terminal (pino-pretty, under a pseudo-terminal).
 */
let world: World;
let filed: ProxyProcess;
let terminal: ProxyProcess;
let logFile: string;

/** A POP3 section on `port` in front of the world's Dovecot. */
function pop3Section(port: number): string {
  return [
    `[POP-${port}]`,
    'server_address = localhost',
    `server_port = ${world.dovecot.pop3sPort}`,
    `server_ca_file = ${world.dovecot.caFile}`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  world = await World.start();
  logFile = join(world.dir, 'proxy.log');
  filed = await world.startProxy({ args: ['--log-file', logFile, '--authorisation-wait', '0'] });
  const terminalDir = join(world.dir, 'terminal');
  await mkdir(terminalDir);
  terminal = await ProxyProcess.start({
    dir: terminalDir,
    config: `${pop3Section(world.ports[4]!)}\n${world.accountSection()}`,
    args: ['--authorisation-wait', '0'],
    tty: true,
  });
  await Promise.all([terminal.ready(), waitForFile(/"event":"ready"/)]);
});
afterAll(async () => {
  await Promise.allSettled([filed?.stop(), terminal?.stop()]);
  await world?.stop();
});

async function waitForFile(pattern: RegExp): Promise<string> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    if (pattern.test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${pattern} never reached ${logFile}`);
}

/** poplib logs in as `POP_NAME` in each way `ATTEMPTS` lists, and prints the answers. */
const HOSTILE_POPLIB = String.raw`
import base64, json, os, poplib
name, password = os.environ['POP_NAME'], os.environ['POP_PASS']
answers = []
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']), timeout=30)
for attempt in os.environ['ATTEMPTS'].split(','):
    try:
        if attempt == 'auth-plain':
            plain = base64.b64encode(('\0' + name + '\0' + password).encode()).decode()
            answers.append(p._shortcmd('AUTH PLAIN ' + plain).decode())
        else:
            p.user(name)
            answers.append(p.pass_(password).decode())
    except poplib.error_proto as err:
        answers.append(err.args[0].decode())
p.quit()
print(json.dumps(answers))
`;

async function hostileLogins(port: number, name: string, attempts: string): Promise<string[]> {
  const result = await python(HOSTILE_POPLIB, {
    ATTEMPTS: attempts,
    PORT: String(port),
    POP_NAME: name,
    POP_PASS: PASSWORD,
  });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as string[];
}

/** A name that would write a line of its own, and clear the screen, in a terminal log. */
const FORGED = 'mallory@example.com\r\n[12:00:00] INFO: forged-by-mallory\x1b[2J';
/** A name the login rules let through (no control character), whose bidi override must not reach a terminal raw. */
const REVERSED = 'mallory\u202egro.elpmaxe@example.com';

describe('the log', () => {
  it('shows the OAuth error code, kind and account of a refresh failure, and no secret', async () => {
    const { refreshToken } = await world.seedTokens({ expired: true });
    world.idp.failNextToken('invalid_grant');
    const client = await Conversation.connect(world.imapPort);
    await client.expect(/^\* OK /);
    client.send(`a LOGIN "${USER}" "${PASSWORD}"`);
    await client.expect(/^a NO \[UNAVAILABLE\] /, 20_000);
    client.close();

    const text = await waitForFile(/"event":"refresh_failed"/);
    const failure = text
      .split('\n')
      .filter((line) => line.includes('"refresh_failed"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)[0];
    expect(failure).toMatchObject({
      level: 40,
      event: 'refresh_failed',
      account: USER,
      kind: 'reauthorise',
      code: 'invalid_grant',
      aadsts: 70000,
    });
    expect(failure?.msg).toMatch(
      /^Refreshing the access token failed: invalid_grant \(AADSTS70000/,
    );
    for (const secret of [refreshToken, PASSWORD]) expect(text).not.toContain(secret);
  });

  it('keeps a POP3 user name with CR LF from writing a line of its own, in the file and in a terminal', async () => {
    for (const [port, proxy] of [
      [world.pop3Port, filed],
      [world.ports[4]!, terminal],
    ] as const) {
      expect(await hostileLogins(port, FORGED, 'auth-plain')).toEqual([
        '-ERR [AUTH] User names do not contain control characters',
      ]);
      const [plain, userPass] = await hostileLogins(port, REVERSED, 'auth-plain,user-pass');
      expect(plain).toMatch(/^-ERR \[AUTH\] Unknown account mallory/);
      expect(userPass).toMatch(/^-ERR \[AUTH\] Unknown account mallory/);
      if (proxy === terminal) await terminal.waitFor(/mallory\\u202egro/);
    }

    const text = await waitForFile(/mallory\\\\u202egro/);
    const terminalText = terminal.output;
    for (const output of [text, terminalText]) {
      expect(output).not.toMatch(/^\S*\s*\[12:00:00\] INFO: forged-by-mallory/m);
      expect(output).not.toContain('forged-by-mallory');
      expect(output).not.toContain('\x1b[2J');
      expect(output).not.toContain('\u202e');
    }
    // Every line of the file is one JSON object.
    for (const line of text.split('\n').filter((line) => line !== ''))
      expect(() => JSON.parse(line) as unknown).not.toThrow();
  });
});

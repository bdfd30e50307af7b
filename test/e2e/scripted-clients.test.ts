import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCa } from '../peers/certs.js';
import { startSmtpUpstream, type SmtpUpstream } from '../peers/smtp-upstream.js';
import { runClient, type CommandResult } from '../support/clients.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * Scripts that write a whole conversation into a pipe and shut their side of the connection at
 * once (`printf ... | nc -N host port`), the way monitoring checks and cron jobs poke mail servers.
 * Everything the proxy answers itself (capabilities, refusals, the login it first takes upstream)
 * reaches the script before the proxy closes. After the login the script's end is passed on like
 * any other byte: what the server then does with the rest is its own business (Dovecot and
 * smtp-server hang up at once, on a direct connection too).
 */
let world: World;
let smtpUpstream: SmtpUpstream;
let proxy: ProxyProcess;

beforeAll(async () => {
  world = await World.start();
  const certDir = join(world.dir, 'smtp-certs');
  await mkdir(certDir);
  const certs = await makeTestCa(certDir);
  smtpUpstream = await startSmtpUpstream({ idp: world.idp, security: 'starttls', certs });
  const smtpSection = [
    `[SMTP-${world.ports[2]}]`,
    'server_address = localhost',
    `server_port = ${smtpUpstream.port}`,
    'server_starttls = True',
    `server_ca_file = ${certs.caFile}`,
    '',
  ].join('\n');
  await world.seedTokens();
  proxy = await world.startProxy({ config: world.config(smtpSection) });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await smtpUpstream?.stop();
  await world?.stop();
});

/** `printf LINES | nc -N 127.0.0.1 PORT`: sends everything, shuts its side, prints what comes back. */
function pipeThroughNetcat(port: number, lines: readonly string[]): Promise<CommandResult> {
  return runClient('nc', ['-N', '127.0.0.1', String(port)], {
    input: lines.map((line) => `${line}\r\n`).join(''),
    timeoutMs: 20_000,
  });
}

const plain = (user: string, password: string): string =>
  Buffer.from(`\0${user}\0${password}`).toString('base64');

/** Complete reply lines, without the greeting. */
function replies(session: CommandResult): string[] {
  return session.stdout.split('\r\n').slice(1, -1);
}

describe('a script that sends its whole conversation and shuts its side', () => {
  it('IMAP: the capabilities and the refusal of a wrong password come back, then the proxy closes', async () => {
    const session = await pipeThroughNetcat(world.imapPort, [
      'a CAPABILITY',
      `b LOGIN "${USER}" "not the password"`,
      'c LOGOUT',
    ]);
    expect(session.code).toBe(0);
    expect(replies(session)).toEqual([
      expect.stringMatching(/^\* CAPABILITY IMAP4rev1 .*AUTH=PLAIN/),
      expect.stringMatching(/^a OK /),
      expect.stringMatching(/^b NO \[AUTHENTICATIONFAILED\] .*password/i),
      '* BYE Logging out',
      'c OK LOGOUT completed',
    ]);
  });

  it('IMAP: the login is answered once the server has taken it, and the server gets the end', async () => {
    const session = await pipeThroughNetcat(world.imapPort, [
      `a LOGIN "${USER}" "${PASSWORD}"`,
      'b LOGOUT',
    ]);
    expect(session.code).toBe(0);
    expect(replies(session)[0]).toMatch(/^a OK \[CAPABILITY .*\] Logged in$/);
  });

  it('POP3: a refused and then an accepted login are both answered', async () => {
    const session = await pipeThroughNetcat(world.pop3Port, [
      `USER ${USER}`,
      'PASS not the password',
      `USER ${USER}`,
      `PASS ${PASSWORD}`,
      'QUIT',
    ]);
    expect(session.code).toBe(0);
    expect(replies(session).slice(0, 4)).toEqual([
      expect.stringMatching(/^\+OK/),
      expect.stringMatching(/^-ERR \[AUTH\] .*password/i),
      expect.stringMatching(/^\+OK/),
      '+OK Logged in.',
    ]);
  });

  it('SMTP: the EHLO, a refused AUTH and the QUIT are answered by the proxy', async () => {
    const session = await pipeThroughNetcat(world.ports[2]!, [
      'EHLO cron.example',
      `AUTH PLAIN ${plain(USER, 'not the password')}`,
      'QUIT',
    ]);
    expect(session.code).toBe(0);
    const codes = replies(session).filter((line) => /^\d{3} /.test(line));
    expect(codes).toEqual([
      expect.stringMatching(/^250 /),
      expect.stringMatching(/^535 5\.7\.8 .*password/i),
      expect.stringMatching(/^221 /),
    ]);
  });

  it('SMTP: a pipelined EHLO and AUTH PLAIN are answered, the login by the server', async () => {
    const session = await pipeThroughNetcat(world.ports[2]!, [
      'EHLO cron.example',
      `AUTH PLAIN ${plain(USER, PASSWORD)}`,
      'QUIT',
    ]);
    expect(session.code).toBe(0);
    const codes = replies(session).filter((line) => /^\d{3} /.test(line));
    expect(codes[0]).toMatch(/^250 /);
    expect(codes[1]).toMatch(/^235 2\.7\.0 /);
    expect(smtpUpstream.attempts.at(-1)).toEqual({ user: USER, outcome: 'accepted' });
  });
});

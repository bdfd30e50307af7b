import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestCa } from '../peers/certs.js';
import { freePorts } from '../peers/free-ports.js';
import {
  startSmtpUpstream,
  type SmtpUpstream,
  type StoredMessage,
} from '../peers/smtp-upstream.js';
import { python, runClient } from '../support/clients.js';
import { Conversation } from '../support/conversation.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { dotStuffedMessage } from '../support/big-message.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * Sending mail through the proxy's SMTP listeners with the clients people use (mutt, msmtp, curl,
 * Python's smtplib) to a real XOAUTH2 submission server (smtp-server, Office 365's shape), once on
 * STARTTLS (587) and once on implicit TLS (465): what arrives upstream, and what each client hears
 * when something is wrong.
 */
const RCPT = 'jane.doe@example.net';
/** An account whose stored token belongs to USER: the server refuses it (the token's user differs). */
const OTHER = 'mallory@example.com';

let world: World;
let proxy: ProxyProcess;
let starttls: SmtpUpstream;
let implicit: SmtpUpstream;
let refusingStartTls: SmtpUpstream;
let deadPort: number;
let home: string;
/** Every token value the test put in the store, to check none reaches the proxy's output. */
const tokenValues: string[] = [];

const ports = {
  get starttls(): number {
    return world.ports[2]!;
  },
  get implicit(): number {
    return world.ports[3]!;
  },
  get refusingStartTls(): number {
    return world.ports[4]!;
  },
  get unreachable(): number {
    return world.ports[5]!;
  },
};

function smtpSection(
  localPort: number,
  upstreamPort: number,
  caFile: string,
  serverStarttls: boolean,
): string {
  return [
    `[SMTP-${localPort}]`,
    'server_address = localhost',
    `server_port = ${upstreamPort}`,
    ...(serverStarttls ? ['server_starttls = True'] : []),
    `server_ca_file = ${caFile}`,
    'local_address = 127.0.0.1',
    '',
  ].join('\n');
}

async function seed(options: { expired?: boolean } = {}): Promise<void> {
  const tokens = await world.seedTokens(options);
  tokenValues.push(tokens.accessToken, tokens.refreshToken);
}

beforeAll(async () => {
  world = await World.start();
  const certDir = join(world.dir, 'smtp-certs');
  home = join(world.dir, 'home');
  await Promise.all([mkdir(certDir), mkdir(home)]);
  const certs = await makeTestCa(certDir);
  [starttls, implicit, refusingStartTls] = await Promise.all([
    startSmtpUpstream({ idp: world.idp, security: 'starttls', certs }),
    startSmtpUpstream({ idp: world.idp, security: 'implicit', certs }),
    startSmtpUpstream({ idp: world.idp, security: 'starttls', certs, refuseStartTls: true }),
  ]);
  deadPort = (await freePorts(1))[0]!;
  const sections = [
    smtpSection(ports.starttls, starttls.port, certs.caFile, true),
    smtpSection(ports.implicit, implicit.port, certs.caFile, false),
    smtpSection(ports.refusingStartTls, refusingStartTls.port, certs.caFile, true),
    smtpSection(ports.unreachable, deadPort, certs.caFile, true),
    world.accountSection(OTHER),
  ].join('\n');
  proxy = await world.startProxy({
    config: world.config(sections),
    args: ['--provider-timeout', '2'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await Promise.allSettled([starttls?.stop(), implicit?.stop(), refusingStartTls?.stop()]);
  await world?.stop();
});
beforeEach(async () => {
  await seed();
});

/** The server's message number `index` (0-based), failing clearly when it has not arrived. */
function stored(upstream: SmtpUpstream, index: number): StoredMessage {
  const message = upstream.messages[index];
  if (!message)
    throw new Error(
      `the server stored ${upstream.messages.length} messages, expected #${index + 1}`,
    );
  return message;
}

/** Reads a complete (possibly multi-line) SMTP reply; returns its lines. */
async function reply(client: Conversation, timeoutMs?: number): Promise<string[]> {
  const lines = [await client.line(timeoutMs)];
  while (/^\d{3}-/.test(lines[lines.length - 1]!)) lines.push(await client.line(timeoutMs));
  return lines;
}

function plainResponse(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`).toString('base64');
}

/** Connects, greets with EHLO and answers the AUTH PLAIN exchange; returns the client and the AUTH reply. */
async function authenticate(
  port: number,
  user: string,
  password: string,
): Promise<{ client: Conversation; answer: string }> {
  const client = await Conversation.connect(port);
  await client.expect(/^220 /);
  client.send('EHLO hand.test');
  await reply(client);
  client.send(`AUTH PLAIN ${plainResponse(user, password)}`);
  const answer = (await reply(client, 20_000)).join('\n');
  return { client, answer };
}

async function authReply(port: number, user: string, password: string): Promise<string> {
  const { client, answer } = await authenticate(port, user, password);
  client.close();
  return answer;
}

/** A script for Python's smtplib: `MODE` picks how it authenticates; the wire goes to stderr. */
const SMTPLIB = String.raw`
import os, smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']), local_hostname='python.test', timeout=60)
s.set_debuglevel(1)
s.ehlo()
user, password, mode = os.environ['SMTP_USER'], os.environ['SMTP_PASS'], os.environ['MODE']
if mode == 'login':
    s.login(user, password)
else:
    mechanism, form = mode.split('-')
    s.user, s.password = user, password
    handler = s.auth_plain if mechanism == 'PLAIN' else s.auth_login
    code, text = s.auth(mechanism, handler, initial_response_ok=(form == 'inline'))
    assert code == 235, (code, text)
s.set_debuglevel(0)
with open(os.environ['MESSAGE'], 'rb') as f:
    s.sendmail(user, [os.environ['RCPT']], f.read())
s.quit()
print('sent')
`;

async function smtplib(
  port: number,
  mode: string,
  message: Buffer,
  password = PASSWORD,
): Promise<{ code: number; wire: string; stdout: string }> {
  const file = join(world.dir, `smtplib-${randomBytes(4).toString('hex')}.eml`);
  await writeFile(file, message);
  const result = await python(SMTPLIB, {
    PORT: String(port),
    SMTP_USER: USER,
    SMTP_PASS: password,
    MODE: mode,
    MESSAGE: file,
    RCPT,
  });
  return { code: result.code, wire: result.stderr, stdout: result.stdout };
}

function shortMessage(subject: string): Buffer {
  return Buffer.from(
    `From: ${USER}\r\nTo: ${RCPT}\r\nSubject: ${subject}\r\n\r\nHello from ${subject}.\r\n.leading dot\r\n`,
  );
}

describe('real SMTP clients through the proxy', () => {
  it.each([
    {
      form: 'TESTBED',
      url: () => `smtp://${USER.replace('@', '%40')}@127.0.0.1:${ports.starttls}/`,
    },
    // The line verbatim apart from the port: an unescaped @ in the user and `localhost`.
    { form: 'issue', url: () => `smtp://${USER}@localhost:${ports.starttls}/` },
  ])(
    'mutt sends non-interactively with the $form muttrc (STARTTLS upstream)',
    async ({ form, url }) => {
      const before = starttls.messages.length;
      const muttrc = join(home, `muttrc-${form}`);
      await writeFile(
        muttrc,
        [
          `set smtp_url = "${url()}"`,
          `set smtp_pass = "${PASSWORD}"`,
          'set smtp_authenticators = "plain:login"',
          'set ssl_starttls = no',
          'set ssl_force_tls = no',
          `set from = "${USER}"`,
          'set use_from = yes',
          'set copy = no',
          `set folder = "${home}/Mail"`,
          `set spoolfile = "${home}/Mail/inbox"`,
          '',
        ].join('\n'),
      );
      const result = await runClient(
        'mutt',
        ['-n', '-d', '2', '-F', muttrc, '-s', `mutt ${form}`, '--', RCPT],
        {
          input: `Sent by mutt 2.2 through oauth2-mail-proxy (${form}).\n`,
          env: { HOME: home, MAIL: join(home, 'Mail', 'inbox') },
        },
      );
      expect(result, `mutt said: ${result.stderr}${result.stdout}`).toMatchObject({ code: 0 });
      const message = stored(starttls, before);
      expect(message).toMatchObject({ mailFrom: USER, rcptTo: [RCPT], user: USER, secure: true });
      expect(message.raw.toString()).toMatch(new RegExp(`^Subject: mutt ${form}\\r$`, 'm'));
      expect(message.raw.toString()).toContain(
        `Sent by mutt 2.2 through oauth2-mail-proxy (${form}).`,
      );
      // mutt (GNU SASL) sends PLAIN inline with the authorisation identity set to the user as well.
      const debug = await readFile(join(home, '.muttdebug0'), 'utf8');
      const [, response] = /> AUTH PLAIN (\S+)/.exec(debug) ?? [];
      expect(Buffer.from(response ?? '', 'base64').toString()).toBe(
        `${USER}\0${USER}\0${PASSWORD}`,
      );
      expect(debug).toMatch(/< 235 2\.7\.0 Authentication successful/);
    },
    // Room for runClient's own 60 s limit to end a stalled mutt and report what it said.
    120_000,
  );

  it.each(['plain', 'login'])(
    'msmtp (auth %s, tls off) sends and the message arrives',
    async (mechanism) => {
      const before = implicit.messages.length;
      const rc = join(home, `msmtprc-${mechanism}`);
      await writeFile(
        rc,
        [
          'account proxy',
          'host 127.0.0.1',
          `port ${ports.implicit}`,
          'domain msmtp.test',
          `auth ${mechanism}`,
          `user ${USER}`,
          `password ${PASSWORD}`,
          'tls off',
          `from ${USER}`,
          'account default : proxy',
          '',
        ].join('\n'),
      );
      await chmod(rc, 0o600);
      const result = await runClient('msmtp', ['-C', rc, '-v', RCPT], {
        input: shortMessage(`msmtp ${mechanism}`),
      });
      expect(result.code, result.stderr).toBe(0);
      // msmtp -v prints the dialogue on stdout; the mechanism it chose is the one asked for.
      expect(result.stdout).toContain(`--> AUTH ${mechanism.toUpperCase()}`);
      const message = stored(implicit, before);
      expect(message).toMatchObject({
        mailFrom: USER,
        rcptTo: [RCPT],
        user: USER,
        heloName: 'msmtp.test',
        secure: true,
      });
      // msmtp adds a Date header (set_date_header auto); the rest arrives as given, leading dot included.
      expect(message.raw.toString()).toMatch(new RegExp(`^Subject: msmtp ${mechanism}\r$`, 'm'));
      expect(message.raw.toString()).toMatch(/^Date: /m);
      expect(
        message.raw
          .toString()
          .endsWith(`\r\n\r\nHello from msmtp ${mechanism}.\r\n.leading dot\r\n`),
      ).toBe(true);
    },
  );

  it('curl sends with AUTH PLAIN answered after the 334, and its EHLO name reaches the server', async () => {
    const before = starttls.messages.length;
    const file = join(world.dir, 'curl.eml');
    await writeFile(file, shortMessage('curl'));
    const result = await runClient('curl', [
      '-sS',
      '-v',
      `smtp://127.0.0.1:${ports.starttls}/client.test`,
      '--mail-from',
      USER,
      '--mail-rcpt',
      RCPT,
      '--upload-file',
      file,
      '--user',
      `${USER}:${PASSWORD}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^> AUTH PLAIN\r?$/m);
    expect(result.stderr).toMatch(/^< 334 ?\r?$/m);
    expect(result.stderr).toMatch(/^< 235 /m);
    // The EHLO curl saw: the server's extensions, our AUTH, no STARTTLS (no local TLS configured).
    for (const extension of [
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      'ENHANCEDSTATUSCODES',
      'DSN',
      'SIZE 157286400',
      'AUTH PLAIN LOGIN',
    ]) {
      expect(result.stderr).toMatch(new RegExp(`^< 250[ -]${extension}\\r?$`, 'm'));
    }
    expect(result.stderr).not.toMatch(/STARTTLS|XOAUTH2/);
    const message = stored(starttls, before);
    expect(message).toMatchObject({
      mailFrom: USER,
      rcptTo: [RCPT],
      user: USER,
      heloName: 'client.test',
    });
    expect(message.raw.equals(shortMessage('curl'))).toBe(true);
  });

  it.each([
    // login() picks PLAIN (its preference is CRAM-MD5, PLAIN, LOGIN) with the response inline.
    { mode: 'login', wire: /send: 'AUTH PLAIN [A-Za-z0-9+/=]+\\r\\n'/ },
    { mode: 'PLAIN-inline', wire: /send: 'AUTH PLAIN [A-Za-z0-9+/=]+\\r\\n'/ },
    { mode: 'PLAIN-prompted', wire: /send: 'AUTH PLAIN\\r\\n'[\s\S]*reply: b'334 ?\\r\\n'/ },
    {
      mode: 'LOGIN-inline',
      wire: /send: 'AUTH LOGIN [A-Za-z0-9+/=]+\\r\\n'[\s\S]*reply: b'334 UGFzc3dvcmQ6\\r\\n'/,
    },
    {
      mode: 'LOGIN-prompted',
      wire: /send: 'AUTH LOGIN\\r\\n'[\s\S]*reply: b'334 VXNlcm5hbWU6\\r\\n'[\s\S]*reply: b'334 UGFzc3dvcmQ6\\r\\n'/,
    },
  ])(
    'Python smtplib authenticates with $mode and sends over both upstream kinds',
    async ({ mode, wire }) => {
      for (const [port, upstream] of [
        [ports.starttls, starttls],
        [ports.implicit, implicit],
      ] as const) {
        const before = upstream.messages.length;
        const result = await smtplib(port, mode, shortMessage(`smtplib ${mode}`));
        expect(result.code, result.wire).toBe(0);
        expect(result.wire).toMatch(wire);
        expect(result.wire).toMatch(/reply: retcode \(235\)/);
        expect(stored(upstream, before)).toMatchObject({
          mailFrom: USER,
          rcptTo: [RCPT],
          user: USER,
          heloName: 'python.test',
        });
      }
    },
  );

  it('passes MAIL, RCPT and DATA pipelined in one write right after 235 (RFC 2920)', async () => {
    const before = starttls.messages.length;
    const client = await Conversation.connect(ports.starttls);
    try {
      await client.expect(/^220 /);
      client.send('EHLO pipeliner.test');
      const ehlo = await reply(client);
      expect(ehlo).toContain('250-PIPELINING');
      expect(ehlo.some((line) => /^250[ -]AUTH PLAIN LOGIN$/.test(line))).toBe(true);
      client.send(`AUTH PLAIN ${plainResponse(USER, PASSWORD)}`);
      await client.expect(/^235 2\.7\.0 /, 20_000);
      client.sendRaw(
        `MAIL FROM:<${USER}>\r\nRCPT TO:<${RCPT}>\r\nRCPT TO:<second@example.net>\r\nDATA\r\n`,
      );
      await client.expect(/^250 /);
      await client.expect(/^250 /);
      await client.expect(/^250 /);
      await client.expect(/^354 /);
      client.sendRaw('Subject: pipelined\r\n\r\n..stuffed line\r\nbody\r\n.\r\n');
      await client.expect(/^250 /);
      client.send('QUIT');
      await client.expect(/^221 /);
    } finally {
      client.close();
    }
    const message = stored(starttls, before);
    expect(message).toMatchObject({
      mailFrom: USER,
      rcptTo: [RCPT, 'second@example.net'],
      user: USER,
      heloName: 'pipeliner.test',
    });
    expect(message.raw.toString()).toBe('Subject: pipelined\r\n\r\n.stuffed line\r\nbody\r\n');
  });

  it('keeps MAIL, RCPT and DATA that a client pipelined behind its AUTH PLAIN for the server', async () => {
    const before = implicit.messages.length;
    const client = await Conversation.connect(ports.implicit);
    try {
      await client.expect(/^220 /);
      client.send('EHLO eager.test');
      await reply(client);
      client.sendRaw(
        `AUTH PLAIN ${plainResponse(USER, PASSWORD)}\r\nMAIL FROM:<${USER}>\r\nRCPT TO:<${RCPT}>\r\nDATA\r\n`,
      );
      await client.expect(/^235 2\.7\.0 /, 20_000);
      await client.expect(/^250 /);
      await client.expect(/^250 /);
      await client.expect(/^354 /);
      client.sendRaw('Subject: eager\r\n\r\nbody\r\n.\r\nQUIT\r\n');
      await client.expect(/^250 /);
      await client.expect(/^221 /);
    } finally {
      client.close();
    }
    expect(stored(implicit, before)).toMatchObject({
      mailFrom: USER,
      rcptTo: [RCPT],
      user: USER,
      raw: Buffer.from('Subject: eager\r\n\r\nbody\r\n'),
    });
  });

  it('a 20 MB message arrives byte-exact (what smtp-server decoded equals what smtplib was given)', async () => {
    const message = dotStuffedMessage(20 * 1024 * 1024, USER, RCPT);
    const before = starttls.messages.length;
    const started = Date.now();
    const result = await smtplib(ports.starttls, 'login', message);
    const elapsed = Date.now() - started;
    expect(result.code, result.wire.slice(-2000)).toBe(0);
    const arrived = stored(starttls, before);
    expect(arrived.raw.length).toBe(message.length);
    expect(sha256(arrived.raw)).toBe(sha256(message));
    // How fast is the benchmark's question (npm run bench); here only that every byte arrives.
    console.info(`20 MB through SMTP (smtplib, STARTTLS upstream): ${elapsed} ms`);
  }, 180_000);
});

describe('what SMTP clients hear when something is wrong', () => {
  it('a wrong password gets 535 5.7.8 naming the cause, and the server sees no login', async () => {
    const attempts = starttls.attempts.length;
    expect(await authReply(ports.starttls, USER, 'not the password')).toBe(
      `535 5.7.8 Wrong password for ${USER}: it does not decrypt the account's stored OAuth2 tokens`,
    );
    expect(starttls.attempts.length).toBe(attempts);

    // msmtp prints the reply and exits EX_NOPERM.
    const rc = join(home, 'msmtprc-wrong');
    await writeFile(
      rc,
      `host 127.0.0.1\nport ${ports.starttls}\nauth plain\nuser ${USER}\npassword wrong\ntls off\nfrom ${USER}\n`,
    );
    await chmod(rc, 0o600);
    const result = await runClient('msmtp', ['-C', rc, RCPT], { input: shortMessage('wrong') });
    expect(result.code).toBe(77);
    expect(result.stderr).toContain(`server message: 535 5.7.8 Wrong password for ${USER}`);
  });

  it('a token the server refuses gets 535 5.7.8 with the server-side reason and the command to run', async () => {
    // The token of USER stored for OTHER: the server's introspection says it belongs to someone else.
    const { FileTokenStore } = await import('../../src/tokens/stores/file-store.js');
    const store = new FileTokenStore(world.tokenStore);
    await store.write(OTHER, (await store.read(USER))!);
    const answer = await authReply(ports.starttls, OTHER, PASSWORD);
    expect(answer).toMatch(
      new RegExp(
        `^535 5\\.7\\.8 localhost:${starttls.port} refused the OAuth2 login for ${OTHER}: the server rejected the token \\(status 401\\)` +
          `.*If this persists, re-authorise the account: oauth2-mail-proxy authorize ${OTHER}$`,
      ),
    );
    expect(starttls.attempts.at(-1)).toEqual({ user: OTHER, outcome: 'rejected' });
  });

  it('an identity provider that is down gets 454 4.7.0, a temporary failure, and msmtp shows why', async () => {
    await seed({ expired: true });
    await world.idp.refuse();
    try {
      expect(await authReply(ports.starttls, USER, PASSWORD)).toMatch(
        new RegExp(
          `^454 4\\.7\\.0 Cannot refresh the OAuth2 token for ${USER}: .+try again later$`,
        ),
      );
      const rc = join(home, 'msmtprc-idp-down');
      await writeFile(
        rc,
        `host 127.0.0.1\nport ${ports.starttls}\nauth plain\nuser ${USER}\npassword ${PASSWORD}\ntls off\nfrom ${USER}\n`,
      );
      await chmod(rc, 0o600);
      const result = await runClient('msmtp', ['-C', rc, RCPT], { input: shortMessage('later') });
      // msmtp 1.8 exits EX_NOPERM (77) for any failed AUTH, 4xx or 5xx alike; the reply it prints is the 454.
      expect(result.code).toBe(77);
      expect(result.stderr).toMatch(/server message: 454 4\.7\.0 Cannot refresh the OAuth2 token/);
    } finally {
      await world.idp.resume();
    }
  });

  it('a temporary failure at the server (454) reaches the client as 454 4.7.0, and the next try works', async () => {
    starttls.failNextAuth('temporary');
    expect(await authReply(ports.starttls, USER, PASSWORD)).toMatch(
      new RegExp(
        `^454 4\\.7\\.0 localhost:${starttls.port} could not check the OAuth2 login for ${USER}: .*454.*Try again later$`,
      ),
    );
    expect(await authReply(ports.starttls, USER, PASSWORD)).toMatch(/^235 2\.7\.0 /);
  });

  it("Office 365's 535 5.7.139 (SMTP AUTH disabled) is explained: the tenant admin must act, not the user", async () => {
    implicit.failNextAuth('smtp-auth-disabled');
    const answer = await authReply(ports.implicit, USER, PASSWORD);
    expect(answer).toMatch(
      new RegExp(
        `^535 5\\.7\\.139 localhost:${implicit.port} refused the OAuth2 login for ${USER} because SMTP AUTH is disabled`,
      ),
    );
    expect(answer).toContain('SmtpClientAuthentication is disabled for the Tenant');
    expect(answer).toMatch(/tenant administrator must enable SMTP AUTH/);
    // The token was fine: the next login needs no new authorisation.
    expect(await authReply(ports.implicit, USER, PASSWORD)).toMatch(/^235 /);
  });

  it('an upstream that refuses STARTTLS gets 421 at the greeting, and no token travels in plain text', async () => {
    const client = await Conversation.connect(ports.refusingStartTls);
    try {
      expect(await client.line(15_000)).toMatch(
        new RegExp(
          `^421 4\\.4\\.2 Cannot connect to localhost:${refusingStartTls.port}: the server refused STARTTLS: .*Try again later$`,
        ),
      );
      await client.closedByPeer();
    } finally {
      client.close();
    }
    expect(refusingStartTls.attempts).toEqual([]);

    const result = await runClient('curl', [
      '-sS',
      `smtp://127.0.0.1:${ports.refusingStartTls}/client.test`,
      '--mail-from',
      USER,
      '--mail-rcpt',
      RCPT,
      '--upload-file',
      '/dev/null',
      '--user',
      `${USER}:${PASSWORD}`,
    ]);
    expect(result.code).not.toBe(0);
    expect(refusingStartTls.messages).toEqual([]);
  });

  it('an unreachable upstream gets 421 4.4.1 at the greeting, naming the server', async () => {
    const client = await Conversation.connect(ports.unreachable);
    try {
      expect(await client.line(15_000)).toBe(
        `421 4.4.1 Cannot connect to localhost:${deadPort}: connection refused. Try again later`,
      );
      await client.closedByPeer();
    } finally {
      client.close();
    }
  });

  it("a client that never authenticates sees the server's own 530", async () => {
    const client = await Conversation.connect(ports.starttls);
    try {
      await client.expect(/^220 /);
      client.send('EHLO anonymous.test');
      await reply(client);
      client.send(`MAIL FROM:<${USER}>`);
      expect(await client.line()).toBe('530 5.7.0 Error: authentication Required');
    } finally {
      client.close();
    }
    // curl without --user does the same thing.
    const result = await runClient('curl', [
      '-sS',
      `smtp://127.0.0.1:${ports.starttls}/client.test`,
      '--mail-from',
      USER,
      '--mail-rcpt',
      RCPT,
      '--upload-file',
      '/dev/null',
    ]);
    expect(result.code).toBe(55);
    expect(result.stderr).toMatch(/530/);
  });

  it('never logs the password or a token', () => {
    expect(proxy.output).not.toContain(PASSWORD);
    for (const token of tokenValues) expect(proxy.output).not.toContain(token);
  });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

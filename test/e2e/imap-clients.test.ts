/**
 * Real IMAP clients through the proxy, against the real XOAUTH2 Dovecot upstream: what users run
 * (fetchmail, mbsync, Python imaplib, imapflow, curl, a hand-typed literal LOGIN) and what they see.
 * One world and one proxy process (with --debug, so the leak check at the end covers every log
 * level) for the whole file; tokens are seeded as if the account had been authorised earlier.
 * The tests share one mailbox and run in order: each says what it adds to it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { python, runClient } from '../support/clients.js';
import { Conversation } from '../support/conversation.js';
import { fetchmailHome } from '../support/fetchmail.js';
import { openTokens } from '../support/sealed-tokens.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const WRONG_PASSWORD = 'not the fetchmail password';
const BIG_MESSAGE_BYTES = 20 * 1024 * 1024;

/** A small message as a mail server stores it: CRLF line endings. */
function message(subject: string, body: string): Buffer {
  return Buffer.from(
    [
      'From: sender@example.com',
      `To: ${USER}`,
      `Subject: ${subject}`,
      `Message-ID: <${subject.replace(/\W/g, '-')}@client.test>`,
      '',
      body,
      '',
    ].join('\r\n'),
  );
}

/** About `size` bytes of valid MIME: random bytes as a base64 attachment in 76-column CRLF lines. */
function bigMessage(size: number): Buffer {
  const header = [
    'From: sender@example.com',
    `To: ${USER}`,
    'Subject: big attachment',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="part-boundary"',
    '',
    '--part-boundary',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'The attachment is random bytes.',
    '--part-boundary',
    'Content-Type: application/octet-stream; name="random.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join('\r\n');
  const encoded = randomBytes(Math.floor((size * 3) / 4)).toString('base64');
  const lines: string[] = [];
  for (let at = 0; at < encoded.length; at += 76) lines.push(encoded.slice(at, at + 76));
  return Buffer.from(`${header}${lines.join('\r\n')}\r\n--part-boundary--\r\n`);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const SEEDED = [
  message('first', 'Hello from the first message.'),
  message('second', 'Second message, with a longer body.\r\nLine two.\r\nLine three.'),
  message('third', 'Third and last of the seeded messages.'),
];

/** Lines up to and including the tagged reply for `tag`. */
async function untilTagged(conversation: Conversation, tag: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await conversation.line();
    lines.push(line);
    if (line.startsWith(`${tag} `)) return lines;
  }
}

/** What imapflow wrote and read, from its own debug log (it hides passwords there). */
interface WireLog {
  readonly sent: string[];
  readonly received: string[];
}

function imapflowLogger(wire: WireLog): NonNullable<ImapFlowOptions['logger']> {
  const record = (entry: { src?: string; msg?: string }): void => {
    if (entry.src === 'c' && entry.msg !== undefined) wire.sent.push(entry.msg);
    if (entry.src === 's' && entry.msg !== undefined) wire.received.push(entry.msg);
  };
  const ignore = (): void => undefined;
  return { debug: record, info: ignore, warn: ignore, error: ignore };
}

describe('real IMAP clients through the proxy', () => {
  let world: World;
  let proxy: ProxyProcess;
  let seededTokens: { accessToken: string; refreshToken: string };

  function imapflow(
    loginMethod: 'AUTH=PLAIN' | 'LOGIN',
    wire: WireLog = { sent: [], received: [] },
  ): ImapFlow {
    return new ImapFlow({
      host: '127.0.0.1',
      port: world.imapPort,
      secure: false,
      doSTARTTLS: false,
      auth: { user: USER, pass: PASSWORD, loginMethod },
      logger: imapflowLogger(wire),
    });
  }

  beforeAll(async () => {
    world = await World.start();
    seededTokens = await world.seedTokens();
    for (const raw of SEEDED) await world.dovecot.deliver(USER, raw);
    proxy = await world.startProxy({ args: ['--debug'] });
    await proxy.ready();
  });
  afterAll(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('fetchmail 6.4 fetches the mail, then finds none new, and reports a wrong password', async () => {
    const {
      delivered,
      rc: rcFor,
      run,
    } = await fetchmailHome(join(world.dir, 'fetchmail'), world.imapPort);
    const rc = (name: string, password: string) => rcFor(name, USER, password);
    const fetchmail = (file: string, ...flags: string[]) => run(file, flags);

    const fetchmailrc = await rc('fetchmailrc', PASSWORD);
    const first = await fetchmail(fetchmailrc);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/3 messages for john\.smith@example\.com at 127\.0\.0\.1/);
    const files = await readdir(delivered);
    expect(files).toHaveLength(SEEDED.length);
    const texts = await Promise.all(files.map((name) => readFile(join(delivered, name), 'utf8')));
    for (const raw of SEEDED) {
      // fetchmail hands the mda LF line endings and puts its own Received: header on top.
      const asDelivered = raw.toString('utf8').replace(/\r\n/g, '\n');
      expect(texts.filter((text) => text.endsWith(asDelivered))).toHaveLength(1);
    }

    const again = await fetchmail(fetchmailrc);
    expect(again.code, again.stdout + again.stderr).toBe(1);
    expect(again.stdout).toMatch(/3 messages \(3 seen\)/);
    expect(await readdir(delivered)).toHaveLength(SEEDED.length);

    // fetchmail 6.4 prints the server's NO text only with -v (on stdout); its stderr just says
    // "Authorization failure".
    const wrong = await fetchmail(await rc('fetchmailrc-wrong', WRONG_PASSWORD), '-v');
    expect(wrong.code, wrong.stdout + wrong.stderr).toBe(3);
    expect(wrong.stderr).toContain('Authorization failure on john.smith@example.com@127.0.0.1');
    expect(wrong.stdout).toMatch(
      /^fetchmail: IMAP< A\d+ NO \[AUTHENTICATIONFAILED\] Wrong password for john\.smith@example\.com\b/m,
    );
    expect(await readdir(delivered)).toHaveLength(SEEDED.length);
  });

  it('mbsync (isync 1.4) pulls the inbox into a local Maildir', async () => {
    const home = join(world.dir, 'mbsync');
    const maildir = join(home, 'Mail');
    await mkdir(maildir, { recursive: true });
    const mbsyncrc = join(home, 'mbsyncrc');
    await writeFile(
      mbsyncrc,
      [
        'IMAPAccount work',
        'Host 127.0.0.1',
        `Port ${world.imapPort}`,
        `User ${USER}`,
        `Pass "${PASSWORD}"`,
        'SSLType None',
        'AuthMechs LOGIN',
        '',
        'IMAPStore work-remote',
        'Account work',
        '',
        'MaildirStore work-local',
        `Path ${maildir}/`,
        `Inbox ${maildir}/INBOX`,
        '',
        'Channel work',
        'Far :work-remote:',
        'Near :work-local:',
        'Patterns INBOX',
        'Create Near',
        'Sync Pull',
        'SyncState *',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    const sync = await runClient('mbsync', ['-c', mbsyncrc, '-a'], {
      env: { HOME: home },
      timeoutMs: 30_000,
    });
    expect(sync.code, sync.stdout + sync.stderr).toBe(0);

    const inbox = join(maildir, 'INBOX');
    const files: string[] = [];
    for (const sub of ['cur', 'new'])
      for (const name of await readdir(join(inbox, sub))) files.push(join(inbox, sub, name));
    const local = await Promise.all(files.map((file) => readFile(file)));
    expect(local).toHaveLength(SEEDED.length);
    // mbsync stores LF line endings and tags each message with its own X-TUID header.
    const withoutTuid = local.map((bytes) => bytes.toString('utf8').replace(/^X-TUID: \S+\n/m, ''));
    for (const raw of SEEDED) {
      expect(
        withoutTuid.filter((text) => text === raw.toString('utf8').replace(/\r\n/g, '\n')),
      ).toHaveLength(1);
    }
  });

  it('Python imaplib logs in with LOGIN and with AUTHENTICATE PLAIN, and fetches a message byte for byte', async () => {
    const script = String.raw`
import base64, imaplib, json, os
host, port = '127.0.0.1', int(os.environ['IMAP_PORT'])
user, password = os.environ['IMAP_USER'], os.environ['IMAP_PASSWORD']
result = {}

def read_second(session):
    typ, data = session.select('INBOX')
    assert typ == 'OK', data
    typ, data = session.uid('SEARCH', 'HEADER', 'Subject', 'second')
    uid = data[0].split()[0]
    typ, data = session.uid('FETCH', uid, '(BODY.PEEK[])')
    return base64.b64encode(data[0][1]).decode()

login = imaplib.IMAP4(host, port)
result['capabilities'] = list(login.capabilities)
typ, data = login.login(user, password)
result['login'] = [typ, data[0].decode()]
result['login_message'] = read_second(login)
login.logout()

plain = imaplib.IMAP4(host, port)
typ, data = plain.authenticate('PLAIN', lambda challenge: b'\0' + user.encode() + b'\0' + password.encode())
result['authenticate'] = [typ, data[0].decode()]
result['authenticate_message'] = read_second(plain)
plain.logout()

try:
    imaplib.IMAP4(host, port).login(user, os.environ['IMAP_WRONG_PASSWORD'])
except imaplib.IMAP4.error as refused:
    result['wrong'] = str(refused)
print(json.dumps(result))
`;
    const run = await python(script, {
      IMAP_PORT: String(world.imapPort),
      IMAP_USER: USER,
      IMAP_PASSWORD: PASSWORD,
      IMAP_WRONG_PASSWORD: WRONG_PASSWORD,
    });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(result.capabilities).toEqual(expect.arrayContaining(['IMAP4REV1', 'AUTH=PLAIN']));
    expect(result.login).toEqual(['OK', expect.stringMatching(/Logged in$/)]);
    expect(result.authenticate).toEqual(['OK', expect.stringMatching(/Logged in$/)]);
    const second = SEEDED[1]!;
    expect(Buffer.from(result.login_message as string, 'base64').equals(second)).toBe(true);
    expect(Buffer.from(result.authenticate_message as string, 'base64').equals(second)).toBe(true);
    expect(result.wrong).toMatch(
      /\[AUTHENTICATIONFAILED\] Wrong password for john\.smith@example\.com/,
    );
  });

  it('a LOGIN typed by hand with a synchronizing literal user and a non-synchronizing literal password', async () => {
    const conversation = await Conversation.connect(world.imapPort);
    try {
      await conversation.expect(/^\* OK \[CAPABILITY [^\]]*LITERAL\+[^\]]*\] /);
      conversation.send(`a LOGIN {${Buffer.byteLength(USER)}}`);
      await conversation.expect(/^\+ /);
      conversation.sendRaw(`${USER} {${Buffer.byteLength(PASSWORD)}+}\r\n${PASSWORD}\r\n`);
      const login = await untilTagged(conversation, 'a');
      expect(login.at(-1)).toMatch(/^a OK (\[CAPABILITY [^\]]+\] )?Logged in$/);

      // From here on it is Dovecot talking, through the proxy.
      conversation.send('b EXAMINE INBOX');
      const examine = await untilTagged(conversation, 'b');
      expect(examine).toContain('* 3 EXISTS');
      expect(examine.at(-1)).toMatch(/^b OK \[READ-ONLY\]/);
      conversation.send('c LOGOUT');
      const logout = await untilTagged(conversation, 'c');
      expect(logout[0]).toMatch(/^\* BYE/);
      await conversation.closedByPeer();
    } finally {
      conversation.close();
    }
  });

  it('imapflow logs in with AUTHENTICATE PLAIN and with LOGIN, lists, fetches, and hears of new mail while idling', async () => {
    const plainWire: WireLog = { sent: [], received: [] };
    const client = imapflow('AUTH=PLAIN', plainWire);
    await client.connect();
    try {
      // imapflow 2.10 does not use SASL-IR for PLAIN even though the proxy advertises it: it sends
      // `AUTHENTICATE PLAIN` alone and answers the `+` continuation (only its OAuth mechanisms use SASL-IR).
      expect(plainWire.sent).toContainEqual(expect.stringMatching(/^\S+ AUTHENTICATE PLAIN$/));
      expect(client.authenticated).toBeTruthy();

      const mailboxes = await client.list();
      expect(mailboxes.map((mailbox) => mailbox.path)).toContain('INBOX');

      const mailbox = await client.mailboxOpen('INBOX');
      expect(mailbox.exists).toBe(SEEDED.length);
      const [uid] = (await client.search({ subject: 'third' }, { uid: true })) || [];
      expect(uid).toBeDefined();
      const third = await client.fetchOne(
        String(uid),
        { source: true, envelope: true },
        { uid: true },
      );
      expect(third && third.envelope?.subject).toBe('third');
      expect(third && third.source?.equals(SEEDED[2]!)).toBe(true);

      // IDLE, then mail arrives: Dovecot's EXISTS must come through the proxy while nobody sends anything.
      const announced = new Promise<number>((resolve) =>
        client.once('exists', (update: { count: number }) => resolve(update.count)),
      );
      const idling = client.idle();
      await waitUntil(() => plainWire.received.some((line) => /^\+ idling/i.test(line)), 5_000);
      await world.dovecot.deliver(USER, message('fourth', 'Arrived while the client was idling.'));
      expect(await withTimeout(announced, 10_000, 'no EXISTS while idling')).toBe(
        SEEDED.length + 1,
      );
      const fourth = await client.fetchOne('*', { envelope: true });
      expect(fourth && fourth.envelope?.subject).toBe('fourth');
      await idling;
    } finally {
      await client.logout();
    }

    const loginWire: WireLog = { sent: [], received: [] };
    const viaLogin = imapflow('LOGIN', loginWire);
    await viaLogin.connect();
    try {
      expect(loginWire.sent).toContainEqual(expect.stringMatching(/^\S+ LOGIN /));
      expect(loginWire.sent).not.toContainEqual(expect.stringMatching(/AUTHENTICATE/));
      const status = await viaLogin.status('INBOX', { messages: true });
      expect(status && status.messages).toBe(SEEDED.length + 1);
    } finally {
      await viaLogin.logout();
    }
  });

  it('a 20 MB message comes through byte for byte, to imapflow and to curl', async () => {
    const big = bigMessage(BIG_MESSAGE_BYTES);
    expect(big.length).toBeGreaterThanOrEqual(BIG_MESSAGE_BYTES);
    const deliveredFile = await world.dovecot.deliver(USER, big);
    const expected = sha256(await readFile(deliveredFile));

    const client = imapflow('AUTH=PLAIN');
    await client.connect();
    let uid: number;
    try {
      await client.mailboxOpen('INBOX');
      const fetched = await client.fetchOne('*', { uid: true, size: true, source: true });
      expect(fetched).not.toBe(false);
      if (!fetched || !fetched.source) throw new Error('no message source');
      uid = fetched.uid;
      expect(fetched.size).toBe(big.length);
      expect(fetched.source.length).toBe(big.length);
      expect(sha256(fetched.source)).toBe(expected);
    } finally {
      await client.logout();
    }

    const output = join(world.dir, 'big-via-curl.eml');
    const curl = await runClient('curl', [
      '-sSv',
      '--user',
      `${USER}:${PASSWORD}`,
      `imap://127.0.0.1:${world.imapPort}/INBOX;UID=${uid}`,
      '-o',
      output,
    ]);
    expect(curl.code, curl.stderr).toBe(0);
    // curl puts the PLAIN response on the command line (SASL-IR), the form imaplib and imapflow do not use.
    expect(curl.stderr).toMatch(/^> \S+ AUTHENTICATE PLAIN [A-Za-z0-9+/]+=*\r?$/m);
    expect(sha256(await readFile(output))).toBe(expected);
  });

  it('after all of that, neither the proxy output nor the token store holds a password or a token', async () => {
    expect(await proxy.stop()).toBe(0);

    const store = await readFile(world.tokenStore, 'utf8');
    const fields = await new FileTokenStore(world.tokenStore).read(USER);
    expect(fields?.access_token).toMatch(/^gAAAAA/);
    expect(fields?.refresh_token).toMatch(/^gAAAAA/);
    const current = await openTokens(fields!, PASSWORD);

    const secrets = [
      PASSWORD,
      WRONG_PASSWORD,
      seededTokens.accessToken,
      seededTokens.refreshToken,
      current.accessToken,
      current.refreshToken,
    ];
    for (const secret of secrets) {
      expect(secret).toBeTruthy();
      expect(proxy.output).not.toContain(secret);
      expect(store).not.toContain(secret);
    }
    // The log was written and said something about each login: the check above was not vacuous.
    expect(proxy.events().filter((event) => event.event === 'login').length).toBeGreaterThanOrEqual(
      8,
    );
  });
});

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

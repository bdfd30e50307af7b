/**
 * The proxy as a service manager runs it: readiness on a notify socket the test provides (as
 * systemd does with NOTIFY_SOCKET), SIGHUP reloading the config while real sessions stay open,
 * a broken config kept out, SIGTERM during a large transfer, and the limit on connections that
 * have not logged in. One world (Dovecot, the identity provider) for the file; each test starts
 * its own proxy process from the built CLI.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeTestCa, type TestCa } from '../peers/certs.js';
import { python, runClient } from '../support/clients.js';
import { Conversation } from '../support/conversation.js';
import { NotifySocket, type Notification } from '../support/notify-socket.js';
import { PROXY_BIN, ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

const run = promisify(execFile);
const OTHER = 'jane.doe@example.com';
const BIG_MESSAGE_BYTES = 12 * 1024 * 1024;

let world: World;
let proxy: ProxyProcess | undefined;
let notify: NotifySocket | undefined;
let smallUid: string;
let bigUid: string;
let bigMessageHash: string;

beforeAll(async () => {
  world = await World.start();
  await world.seedTokens();
  await world.dovecot.deliver(USER, Buffer.from('Subject: hello\r\n\r\nservice hello\r\n'));
  const bigOne = bigMessage(BIG_MESSAGE_BYTES);
  bigMessageHash = sha256(bigOne);
  await world.dovecot.deliver(USER, bigOne);
  const [small, big] = await uidsOf(['hello', 'big transfer']);
  smallUid = small!;
  bigUid = big!;
});
afterAll(async () => {
  await world?.stop();
});
afterEach(async () => {
  await proxy?.stop('SIGKILL');
  proxy = undefined;
  notify?.close();
  notify = undefined;
});

// Ports: [0] IMAP, [1] POP3, [2] SMTP, [3] spare (another program's), [4] implicit-TLS IMAP.
const port = (index: number): number => world.ports[index]!;

function imapSection(
  options: { port?: number; serverAddress?: string; extra?: string[] } = {},
): string {
  return [
    `[IMAP-${options.port ?? port(0)}]`,
    `server_address = ${options.serverAddress ?? 'localhost'}`,
    `server_port = ${world.dovecot.imapsPort}`,
    `server_ca_file = ${world.dovecot.caFile}`,
    ...(options.extra ?? []),
    '',
  ].join('\n');
}

function popSection(localPort = port(1)): string {
  return [
    `[POP-${localPort}]`,
    'server_address = localhost',
    `server_port = ${world.dovecot.pop3sPort}`,
    `server_ca_file = ${world.dovecot.caFile}`,
    '',
  ].join('\n');
}

function smtpSection(): string {
  // Never dialled here: connections are refused before a session would connect upstream.
  return [
    `[SMTP-${port(2)}]`,
    'server_address = localhost',
    `server_port = ${port(3)}`,
    'server_starttls = True',
    '',
  ].join('\n');
}

async function startProxy(config: string, args: string[] = []): Promise<ProxyProcess> {
  const notifyPath = join(world.dir, `notify-${randomBytes(4).toString('hex')}.sock`);
  notify = await NotifySocket.bind(notifyPath);
  proxy = await ProxyProcess.start({
    dir: world.dir,
    config,
    args: ['--authorisation-wait', '0', ...args],
    env: { NOTIFY_SOCKET: notifyPath },
  });
  await notify.next(isReady);
  return proxy;
}

async function writeConfig(config: string): Promise<void> {
  await writeFile(join(world.dir, 'config.ini'), config);
}

/** Sends SIGHUP and waits for the reload's outcome in the log. */
async function reload(running: ProxyProcess): Promise<Record<string, unknown>> {
  const before = running.events().length;
  running.child.kill('SIGHUP');
  for (;;) {
    await running.waitFor(/"event":"(reloaded|reload_failed)"/);
    const outcome = running
      .events()
      .slice(before)
      .find((event) => event.event === 'reloaded' || event.event === 'reload_failed');
    if (outcome) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const isReady = (notification: Notification): boolean => notification.READY === '1';

async function imapLogin(localPort = port(0), user = USER): Promise<Conversation> {
  const imap = await Conversation.connect(localPort);
  await imap.expect(/^\* OK /);
  imap.send(`a LOGIN "${user}" "${PASSWORD}"`);
  return imap;
}

/** Reads untagged lines until the tagged reply to `tag`, returning all of them. */
async function untilTagged(conversation: Conversation, tag: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await conversation.line(20_000);
    lines.push(line);
    if (line.startsWith(`${tag} `)) return lines;
  }
}

const fetchSmall = (localPort = port(0)) =>
  runClient('curl', [
    '-sS',
    '--max-time',
    '30',
    '--user',
    `${USER}:${PASSWORD}`,
    `imap://127.0.0.1:${localPort}/INBOX;UID=${smallUid}`,
  ]);

describe('readiness', () => {
  it('says READY=1 with what is listening only once every port and the control socket accept connections', async () => {
    const notifyPath = join(world.dir, 'notify-ready.sock');
    notify = await NotifySocket.bind(notifyPath);
    proxy = await ProxyProcess.start({
      dir: world.dir,
      config: imapSection() + popSection() + world.accountSection(),
      env: { NOTIFY_SOCKET: notifyPath },
    });

    const ready = await notify.next(isReady);
    // Checked the moment the notification arrives: nothing may still be starting.
    await Promise.all([
      connects({ port: port(0) }),
      connects({ port: port(1) }),
      connects({ path: join(world.dir, 'control.sock') }),
    ]);
    expect(ready.fields.MAINPID).toBe(String(proxy.child.pid));
    expect(ready.fields.STATUS).toBe(
      `listening: IMAP 127.0.0.1:${port(0)} → localhost:${world.dovecot.imapsPort}, POP 127.0.0.1:${port(1)} → localhost:${world.dovecot.pop3sPort}; ` +
        `control socket ${join(world.dir, 'control.sock')}`,
    );
    expect(notify.received.slice(0, ready.index)).toEqual([]);

    expect(await proxy.stop()).toBe(0);
    const stopping = await notify.next((notification) => notification.STOPPING === '1');
    expect(stopping.fields.STATUS).toMatch(/^stopping: /);
  });
});

describe('SIGHUP', () => {
  it('adds a listener, updates a changed one and swaps accounts while a logged-in session stays open', async () => {
    const running = await startProxy(imapSection() + world.accountSection());
    const held = await imapLogin();
    await held.expect(/^a OK /);
    held.send('b SELECT INBOX');
    expect((await untilTagged(held, 'b')).at(-1)).toMatch(/^b OK /);

    // The IMAP section now reaches Dovecot by address, a POP3 port is new, USER's account is gone
    // and another one is there.
    await writeConfig(
      imapSection({ serverAddress: '127.0.0.1' }) + popSection() + world.accountSection(OTHER),
    );
    const readyCount = notify!.received.length;
    const outcome = await reload(running);
    expect(outcome).toMatchObject({
      event: 'reloaded',
      bound: [`POP-${port(1)}`],
      unbound: [],
      updated: [`IMAP-${port(0)}`],
      accountsAdded: [OTHER],
      accountsRemoved: [USER],
      accountsChanged: [],
    });
    const reloading = await notify!.next(
      (notification) => notification.RELOADING === '1',
      readyCount,
    );
    expect(Number(reloading.fields.MONOTONIC_USEC)).toBeGreaterThan(0);
    const readyAgain = await notify!.next(isReady, reloading.index);
    expect(readyAgain.fields.STATUS).toContain(
      `IMAP 127.0.0.1:${port(0)} → 127.0.0.1:${world.dovecot.imapsPort}, POP 127.0.0.1:${port(1)}`,
    );

    // The established session goes on as if nothing happened.
    held.send(`c UID FETCH ${smallUid} BODY[TEXT]`);
    const fetched = await untilTagged(held, 'c');
    expect(fetched.join('\n')).toContain('service hello');
    expect(fetched.at(-1)).toMatch(/^c OK /);

    // New logins follow the new accounts: USER is unknown now, OTHER exists (and needs authorising).
    const late = await imapLogin();
    await late.expect(/^a NO \[AUTHENTICATIONFAILED\] Unknown account john\.smith@example\.com/);
    late.close();
    const pop = await Conversation.connect(port(1));
    await pop.expect(/^\+OK /);
    pop.send(`USER ${OTHER}`);
    await pop.expect(/^\+OK /);
    pop.send('PASS whatever');
    await pop.expect(/^-ERR \[SYS\/TEMP\] /);
    pop.close();

    held.send('d LOGOUT');
    await held.expect(/^\* BYE/);
    expect(await running.stop()).toBe(0);
  });

  it('applies a changed [emailproxy] option to the next login: delete_account_token_on_password_error', async () => {
    const running = await startProxy(imapSection() + world.accountSection());
    const mistyped = async (): Promise<string> => {
      const imap = await Conversation.connect(port(0));
      await imap.expect(/^\* OK /);
      imap.send(`a LOGIN "${USER}" "not the password"`);
      const reply = await imap.expect(/^a /);
      imap.close();
      return reply;
    };
    expect(await mistyped()).toMatch(/^a NO \[AUTHENTICATIONFAILED\] Wrong password/);
    expect(await readFile(world.tokenStore, 'utf8')).toMatch(/^refresh_token = /m);

    await writeConfig(
      `${imapSection()}${world.accountSection()}[emailproxy]\ndelete_account_token_on_password_error = True\n`,
    );
    expect(await reload(running)).toMatchObject({ event: 'reloaded' });
    await mistyped();
    expect(await readFile(world.tokenStore, 'utf8')).not.toMatch(/^refresh_token = /m);
    expect(await running.stop()).toBe(0);
    await world.seedTokens();
  });

  it('keeps the running configuration when the new one is invalid or a new port is taken', async () => {
    const config = imapSection() + world.accountSection();
    const running = await startProxy(config);

    await writeConfig(`${config}\nthis line is not an option\n`);
    const broken = await reload(running);
    expect(broken.event).toBe('reload_failed');
    expect(broken.error).toMatch(
      new RegExp(
        `^${join(world.dir, 'config.ini')}:\\d+: section \\[${USER.replace(/\./g, '\\.')}\\]: line is not "key = value"`,
      ),
    );
    expect(String(broken.error)).not.toContain('\n');
    const status = await notify!.next(
      (notification) => notification.STATUS?.startsWith('reload failed') === true,
    );
    expect(status.fields.READY).toBe('1');
    expect((await fetchSmall()).stdout).toContain('service hello');

    // Another program holds the port a new POP3 section wants; the IMAP section is dropped in the
    // same edit. Nothing of it may apply: IMAP keeps serving on its port.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port(3), '127.0.0.1', resolve));
    try {
      await writeConfig(popSection(port(3)) + world.accountSection());
      const taken = await reload(running);
      expect(taken.event).toBe('reload_failed');
      expect(taken.error).toBe(
        `[POP-${port(3)}]: cannot listen on 127.0.0.1:${port(3)}: the port is already in use (is another proxy running?)`,
      );
      expect((await fetchSmall()).stdout).toContain('service hello');
    } finally {
      squatter.close();
    }
    expect(await running.stop()).toBe(0);
  });

  it('serves a renewed certificate on an implicit-TLS port without closing it', async () => {
    const caDir = (name: string) => join(world.dir, name);
    await Promise.all([
      mkdir(caDir('ca-old'), { recursive: true }),
      mkdir(caDir('ca-new'), { recursive: true }),
    ]);
    const [oldCa, newCa] = await Promise.all([
      makeTestCa(caDir('ca-old')),
      makeTestCa(caDir('ca-new')),
    ]);
    const tlsSection = (ca: TestCa) =>
      imapSection({
        port: port(4),
        extra: [`local_certificate_path = ${ca.certFile}`, `local_key_path = ${ca.keyFile}`],
      });

    const running = await startProxy(tlsSection(oldCa) + world.accountSection());
    expect(await tlsGreeting(oldCa)).toMatch(/^\* OK /);

    await writeConfig(tlsSection(newCa) + world.accountSection());
    expect(await reload(running)).toMatchObject({
      event: 'reloaded',
      bound: [],
      unbound: [],
      updated: [`IMAP-${port(4)}`],
    });
    expect(await tlsGreeting(newCa)).toMatch(/^\* OK /);
    await expect(tlsGreeting(oldCa)).rejects.toThrow(/certificate/);
    expect(await running.stop()).toBe(0);
  });
});

describe('SIGTERM', () => {
  it('lets a large transfer finish, tells a client that has not logged in goodbye, and exits 0', async () => {
    const running = await startProxy(imapSection() + world.accountSection(), [
      '--shutdown-grace',
      '30',
    ]);
    const waiting = await Conversation.connect(port(0));
    await waiting.expect(/^\* OK /);

    // ~4 s at 3 MB/s: the proxy is stopped in the middle of it.
    const transfer = fetchBigSlowly(3);
    await running.waitFor(/"event":"login"/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stoppedAt = Date.now();
    running.child.kill('SIGTERM');

    await waiting.expect(
      '* BYE [UNAVAILABLE] oauth2-mail-proxy is shutting down, try again shortly',
      2_000,
    );
    await waiting.closedByPeer();
    await running.waitFor(/"event":"stopping"/);
    await expect(connects({ port: port(0) }, 2_000)).rejects.toThrow(/ECONNREFUSED/);

    const fetched = await transfer;
    expect(fetched.stderr).toBe('');
    expect(JSON.parse(fetched.stdout)).toEqual({ sha256: bigMessageHash, logout: 'BYE' });
    expect(await running.exit()).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(30_000);
    expect(running.events().find((event) => event.event === 'stopped')).toMatchObject({ cut: 0 });
    expect(await notify!.next((notification) => notification.STOPPING === '1')).toBeDefined();
  });

  it('closes a session still running when the grace time is over, and still exits 0', async () => {
    const running = await startProxy(imapSection() + world.accountSection(), [
      '--shutdown-grace',
      '1',
    ]);
    // ~12 s at 1 MB/s, far longer than the grace time.
    const transfer = fetchBigSlowly(1);
    await running.waitFor(/"event":"login"/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stoppedAt = Date.now();
    running.child.kill('SIGTERM');

    expect(await running.exit()).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(4_000);
    expect(running.events().find((event) => event.event === 'sessions_cut')).toMatchObject({
      sessions: 1,
      graceMs: 1000,
    });
    const cut = await transfer;
    expect(cut.code).not.toBe(0);
    expect(cut.stderr).toMatch(/closed after \d+ of \d+ bytes/);
  });
});

describe("the system unit's command lines", () => {
  it('start, reload and stop the daemon as systemd would run them, while a client is logged in', async () => {
    const unit = await readFile(
      fileURLToPath(new URL('../../systemd/oauth2-mail-proxy.service', import.meta.url)),
      'utf8',
    );
    const setting = (key: string): string => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)![1]!;
    // What systemd makes of %E, %S and the *Directory= settings, in a private root.
    const etc = join(world.dir, 'root/etc');
    const varLib = join(world.dir, 'root/var/lib');
    const stateDirectory = join(varLib, setting('StateDirectory'));
    const configurationDirectory = join(etc, setting('ConfigurationDirectory'));
    await mkdir(stateDirectory, { recursive: true, mode: 0o700 });
    await mkdir(configurationDirectory, { recursive: true });
    await writeFile(
      join(configurationDirectory, 'config.ini'),
      imapSection() + world.accountSection() + world.accountSection(OTHER),
      { mode: 0o600 },
    );
    await copyFile(world.tokenStore, join(stateDirectory, 'tokens.ini'));

    const [command, ...args] = setting('ExecStart')
      .replaceAll('%E', etc)
      .replaceAll('%S', varLib)
      .split(' ');
    expect(command).toBe('/usr/local/bin/oauth2-mail-proxy');
    notify = await NotifySocket.bind(join(world.dir, 'notify-unit.sock'));
    const daemon = spawn(process.execPath, [PROXY_BIN, ...args], {
      env: {
        ...process.env,
        NOTIFY_SOCKET: notify.path,
        STATE_DIRECTORY: stateDirectory,
        CONFIGURATION_DIRECTORY: configurationDirectory,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    daemon.stderr.on('data', (chunk: Buffer) => (log += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', resolve));
    try {
      const ready = await notify.next(isReady);
      expect(ready.fields.STATUS).toBe(
        `listening: IMAP 127.0.0.1:${port(0)} → localhost:${world.dovecot.imapsPort}; control socket ${join(stateDirectory, 'control.sock')}`,
      );

      const held = await imapLogin();
      await held.expect(/^a OK /);
      // An account without tokens: the command to run must work from an admin's shell, which has
      // no STATE_DIRECTORY, so it names both files.
      const other = await imapLogin(port(0), OTHER);
      const howTo = `run: oauth2-mail-proxy authorize ${OTHER} --config-file ${join(configurationDirectory, 'config.ini')} --cache-store ${join(stateDirectory, 'tokens.ini')}`;
      await vi.waitFor(() => expect(log).toContain(howTo), { timeout: 10_000 });
      other.close();

      await run('/bin/sh', ['-c', setting('ExecReload')], {
        env: { ...process.env, MAINPID: String(daemon.pid) },
      });
      const reloading = await notify.next((notification) => notification.RELOADING === '1');
      await notify.next(isReady, reloading.index);
      held.send('b NOOP');
      await held.expect(/^b OK /);

      // Stopped while the client is logged in: its session goes on until it logs out itself.
      daemon.kill('SIGTERM');
      await notify.next((notification) => notification.STOPPING === '1');
      held.send('c NOOP');
      await held.expect(/^c OK /);
      held.send('d LOGOUT');
      await held.expect(/^\* BYE Logging out/);
      await held.expect(/^d OK /);
      expect(await exited).toBe(0);
      expect(log).toMatch(/"event":"stopped","cut":0/);
    } finally {
      daemon.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('connections before login', () => {
  it("refuses one over the limit with each protocol's own words; logged-in sessions do not count", async () => {
    const running = await startProxy(
      imapSection() + popSection() + smtpSection() + world.accountSection(),
      ['--max-preauth-connections', '2'],
    );
    const first = await Conversation.connect(port(0));
    await first.expect(/^\* OK /);
    const second = await Conversation.connect(port(1));
    await second.expect(/^\+OK /);

    const refusedImap = await Conversation.connect(port(0));
    await refusedImap.expect('* BYE [UNAVAILABLE] Too many connections, try again later');
    await refusedImap.closedByPeer();
    const refusedPop = await Conversation.connect(port(1));
    await refusedPop.expect('-ERR [SYS/TEMP] Too many connections, try again later');
    await refusedPop.closedByPeer();
    const refusedSmtp = await Conversation.connect(port(2));
    await refusedSmtp.expect(/^421 4\.7\.0 \S+ Too many connections, try again later$/);
    await refusedSmtp.closedByPeer();
    expect(running.events().find((event) => event.event === 'connection_refused')).toMatchObject({
      reason: 'too-many-connections',
      limit: 2,
    });

    // Once the first client has logged in it is a spliced session and frees its place.
    first.send(`a LOGIN "${USER}" "${PASSWORD}"`);
    await first.expect(/^a OK /);
    const third = await Conversation.connect(port(0));
    await third.expect(/^\* OK /);

    for (const conversation of [first, second, third]) conversation.close();
    expect(await running.stop()).toBe(0);
  });
});

/** Resolves when a TCP port or Unix socket accepts a connection. */
function connects(target: { port: number } | { path: string }, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket =
      'port' in target
        ? net.connect({ port: target.port, host: '127.0.0.1' })
        : net.connect(target.path);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/** The greeting on the implicit-TLS port, trusting only `ca`. */
function tlsGreeting(ca: TestCa): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port: port(4),
      host: '127.0.0.1',
      ca: readFileSync(ca.caFile),
      servername: 'localhost',
    });
    socket.once('error', reject);
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString('utf8'));
    });
  });
}

/**
 * Fetches the big message as a slow mail client on a slow link would: a small socket receive buffer
 * (so the message cannot hide in kernel buffers) read at `megabytesPerSecond`. Prints the body's
 * SHA-256 and how LOGOUT went; fails, naming how far it got, if the connection closes early.
 */
function fetchBigSlowly(megabytesPerSecond: number) {
  const script = `
import hashlib, json, os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
s.connect(("127.0.0.1", int(os.environ["PORT"])))
f = s.makefile("rb", buffering=0)
def line():
    text = b""
    while not text.endswith(b"\\n"):
        byte = f.read(1)
        if not byte:
            sys.exit("connection closed in a reply line")
        text += byte
    return text.decode()
def until(tag):
    while True:
        text = line()
        if text.startswith(tag + " "):
            return text
line()
s.sendall(('a LOGIN "%s" "%s"\\r\\n' % (os.environ["USER_NAME"], os.environ["PASSWORD"])).encode())
until("a")
s.sendall(b"b SELECT INBOX\\r\\n")
until("b")
s.sendall(("c UID FETCH %s BODY.PEEK[]\\r\\n" % os.environ["UID"]).encode())
size = int(line().rsplit("{", 1)[1].split("}")[0])
digest, got, chunk = hashlib.sha256(), 0, 64 * 1024
started = time.monotonic()
while got < size:
    data = f.read(min(chunk, size - got))
    if not data:
        sys.exit("closed after %d of %d bytes" % (got, size))
    digest.update(data)
    got += len(data)
    time.sleep(max(0.0, got / (float(os.environ["RATE"]) * 1e6) - (time.monotonic() - started)))
until("c")
s.sendall(b"d LOGOUT\\r\\n")
print(json.dumps({"sha256": digest.hexdigest(), "logout": line().split()[1]}))
`;
  return python(script, {
    PORT: String(port(0)),
    USER_NAME: USER,
    PASSWORD,
    UID: bigUid,
    RATE: String(megabytesPerSecond),
  });
}

/** The UIDs of the messages with these subjects, asked of Dovecot through a short-lived proxy. */
async function uidsOf(subjects: readonly string[]): Promise<string[]> {
  const lookup = await ProxyProcess.start({
    dir: world.dir,
    config: imapSection() + world.accountSection(),
  });
  try {
    await lookup.ready();
    const imap = await imapLogin();
    await imap.expect(/^a OK /);
    imap.send('b SELECT INBOX');
    await untilTagged(imap, 'b');
    const uids: string[] = [];
    for (const subject of subjects) {
      imap.send(`c UID SEARCH SUBJECT "${subject}"`);
      const lines = await untilTagged(imap, 'c');
      const uid = /^\* SEARCH (\d+)$/m.exec(lines.join('\n'))?.[1];
      if (uid === undefined) throw new Error(`no message "${subject}": ${lines.join(' | ')}`);
      uids.push(uid);
    }
    imap.close();
    return uids;
  } finally {
    expect(await lookup.stop()).toBe(0);
  }
}

function bigMessage(size: number): Buffer {
  const header =
    'Subject: big transfer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const encoded = randomBytes(Math.floor((size * 3) / 4)).toString('base64');
  const lines: string[] = [];
  for (let at = 0; at < encoded.length; at += 76) lines.push(encoded.slice(at, at + 76));
  return Buffer.from(`${header}${lines.join('\r\n')}\r\n`);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

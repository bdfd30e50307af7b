import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { python, runClient } from '../support/clients.js';
import { Conversation } from '../support/conversation.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { dotStuffedMessage } from '../support/big-message.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * Fetching mail through the proxy's POP3 listener with the clients people use (fetchmail 6.4,
 * Python's poplib, curl) from a real Dovecot POP3S that checks XOAUTH2 tokens at the test identity
 * provider: what arrives, byte for byte, and what each client hears when something is wrong.
 */
/** An account whose stored token belongs to USER: Dovecot refuses it (the token's user differs). */
const OTHER = 'mallory@example.com';

const FIRST = Buffer.from(
  `From: alice@example.net\r\nTo: ${USER}\r\nSubject: first over POP3\r\n\r\nHello through the proxy.\r\n`,
);
const SECOND = Buffer.from(
  `From: bob@example.net\r\nTo: ${USER}\r\nSubject: second over POP3\r\n\r\n.a line that POP3 dot-stuffs\r\n.\r\nend\r\n`,
);

let world: World;
let proxy: ProxyProcess;
let deadPort: number;
/** Every token value the test put in the store, to check none reaches the proxy's output. */
const tokenValues: string[] = [];

const unreachablePort = (): number => world.ports[2]!;

async function seed(options: { expired?: boolean } = {}): Promise<void> {
  const tokens = await world.seedTokens(options);
  tokenValues.push(tokens.accessToken, tokens.refreshToken);
}

beforeAll(async () => {
  world = await World.start();
  deadPort = (await freePorts(1))[0]!;
  await world.dovecot.deliver(USER, FIRST);
  await world.dovecot.deliver(USER, SECOND);
  const unreachable = [
    `[POP-${unreachablePort()}]`,
    'server_address = 127.0.0.1',
    `server_port = ${deadPort}`,
    '',
  ].join('\n');
  proxy = await world.startProxy({
    config: world.config(`${unreachable}\n${world.accountSection(OTHER)}`),
    args: ['--provider-timeout', '2'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});
beforeEach(async () => {
  await seed();
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A fetchmail 6.4 rc polling the proxy as the users do, delivering each message to a file. */
async function fetchmailSetup(
  name: string,
  password: string,
): Promise<{ rc: string; home: string; inbox: string }> {
  const home = join(world.dir, `fetchmail-${name}`);
  const inbox = join(home, 'inbox');
  await mkdir(inbox, { recursive: true });
  const mda = join(home, 'deliver.sh');
  await writeFile(mda, `#!/bin/sh\nexec cat > "${inbox}/$(date +%s%N).eml"\n`, { mode: 0o755 });
  const rc = join(home, 'fetchmailrc');
  await writeFile(
    rc,
    [
      'set no bouncemail',
      `poll localhost protocol POP3 port ${world.pop3Port} auth password`,
      `  user "${USER}" there with password "${password}" is "root" here`,
      "  sslproto ''",
      '  keep',
      '  fetchall',
      `  mda "${mda}"`,
      '',
    ].join('\n'),
  );
  await chmod(rc, 0o600);
  return { rc, home, inbox };
}

async function delivered(inbox: string): Promise<string[]> {
  const names = (await readdir(inbox)).sort();
  return Promise.all(names.map((name) => readFile(join(inbox, name), 'utf8')));
}

/** poplib logs in (`MODE`: USER/PASS, AUTH PLAIN inline or after `+`), prints STAT and message 1's lines. */
const POPLIB = String.raw`
import base64, json, os, poplib
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']), timeout=30)
user, password, mode = os.environ['POP_USER'], os.environ['POP_PASS'], os.environ['MODE']
plain = base64.b64encode(('\0' + user + '\0' + password).encode()).decode()
try:
    if mode == 'user-pass':
        p.user(user)
        answer = p.pass_(password)
    elif mode == 'auth-inline':
        answer = p._shortcmd('AUTH PLAIN ' + plain)
    else:
        p._putcmd('AUTH PLAIN')
        challenge = p._getresp()
        assert challenge.rstrip() == b'+', challenge
        answer = p._shortcmd(plain)
except poplib.error_proto as err:
    print(json.dumps({'error': err.args[0].decode()}))
    raise SystemExit(0)
count, size = p.stat()
_, lines, _ = p.retr(2)
p.quit()
print(json.dumps({'answer': answer.decode(), 'count': count, 'second': b'\r\n'.join(lines).decode() + '\r\n'}))
`;

async function poplib(
  mode: string,
  password = PASSWORD,
): Promise<{ answer?: string; error?: string; count?: number; second?: string }> {
  const result = await python(POPLIB, {
    PORT: String(world.pop3Port),
    POP_USER: USER,
    POP_PASS: password,
    MODE: mode,
  });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as {
    answer?: string;
    error?: string;
    count?: number;
    second?: string;
  };
}

/** Logs in by hand with USER/PASS and returns the reply to PASS. */
async function passReply(user: string, password: string, port = world.pop3Port): Promise<string> {
  const client = await Conversation.connect(port);
  try {
    await client.expect(/^\+OK /);
    client.send(`USER ${user}`);
    await client.expect(/^\+OK/);
    client.send(`PASS ${password}`);
    return await client.line(20_000);
  } finally {
    client.close();
  }
}

describe('real POP3 clients through the proxy', () => {
  it('fetchmail 6.4 polls with the issue-style rc: both messages reach the mda, exit 0', async () => {
    const { rc, home, inbox } = await fetchmailSetup('ok', PASSWORD);
    const result = await runClient(
      'fetchmail',
      ['-f', rc, '--pidfile', join(home, 'fetchmail.pid'), '--nodetach', '--nosyslog'],
      {
        env: { FETCHMAILHOME: home, HOME: home },
      },
    );
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const messages = await delivered(inbox);
    expect(messages).toHaveLength(2);
    // fetchmail hands the mda LF line ends and adds its Received header; the rest is the mailbox's.
    const [first, second] = messages as [string, string];
    expect(first).toContain(FIRST.toString().replace(/\r\n/g, '\n'));
    expect(second).toContain(SECOND.toString().replace(/\r\n/g, '\n'));
  });

  it('fetchmail with a wrong password exits 3 (authentication failed) and delivers nothing', async () => {
    const { rc, home, inbox } = await fetchmailSetup('wrong', 'not the password');
    const result = await runClient(
      'fetchmail',
      ['-f', rc, '--pidfile', join(home, 'fetchmail.pid'), '--nodetach', '--nosyslog'],
      {
        env: { FETCHMAILHOME: home, HOME: home },
      },
    );
    // fetchmail 6.4 reads any "lock" in a -ERR text (even in "unlock") as "lock busy" and exits 9.
    expect(result.stderr).not.toContain('lock busy');
    expect(result.code, result.stderr + result.stdout).toBe(3);
    expect(await delivered(inbox)).toEqual([]);
  });

  it.each(['user-pass', 'auth-inline', 'auth-prompted'])(
    'Python poplib logs in with %s and reads the mailbox',
    async (mode) => {
      const outcome = await poplib(mode);
      expect(outcome.error).toBeUndefined();
      expect(outcome.answer).toMatch(/^\+OK/);
      expect(outcome.count).toBe(2);
      // poplib undoes the dot-stuffing; the message is the mailbox's, byte for byte.
      expect(outcome.second).toBe(SECOND.toString());
    },
  );

  it('curl pop3:// lists and retrieves through the proxy', async () => {
    const list = await runClient('curl', [
      '-sS',
      '-v',
      '--user',
      `${USER}:${PASSWORD}`,
      `pop3://127.0.0.1:${world.pop3Port}/`,
    ]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toBe(`1 ${FIRST.length}\r\n2 ${SECOND.length}\r\n`);
    // curl reads CAPA and picks SASL PLAIN, the mechanism the proxy announces.
    expect(list.stderr).toMatch(/^< SASL PLAIN\r?$/m);
    expect(list.stderr).toMatch(/^> AUTH PLAIN/m);
    expect(list.stderr).not.toMatch(/^< STLS/m);

    const retr = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${PASSWORD}`,
      `pop3://127.0.0.1:${world.pop3Port}/2`,
    ]);
    expect(retr.code, retr.stderr).toBe(0);
    expect(retr.stdout).toBe(SECOND.toString());
  });

  it('a 20 MB message comes out of RETR byte-exact (curl and poplib)', async () => {
    const big = dotStuffedMessage(20 * 1024 * 1024, 'carol@example.net', USER);
    await world.dovecot.deliver(USER, big);
    const number = 3;
    const out = join(world.dir, 'retr-big.eml');
    const started = Date.now();
    const result = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${PASSWORD}`,
      '-o',
      out,
      `pop3://127.0.0.1:${world.pop3Port}/${number}`,
    ]);
    const curlMs = Date.now() - started;
    expect(result.code, result.stderr).toBe(0);
    const received = await readFile(out);
    expect(received.length).toBe(big.length);
    expect(sha256(received)).toBe(sha256(big));

    const script = String.raw`
import hashlib, os, poplib
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']), timeout=60)
p.user(os.environ['POP_USER'])
p.pass_(os.environ['POP_PASS'])
_, lines, _ = p.retr(int(os.environ['NUMBER']))
p.quit()
body = b'\r\n'.join(lines) + b'\r\n'
print(len(body), hashlib.sha256(body).hexdigest())
`;
    const pyStarted = Date.now();
    const py = await python(script, {
      PORT: String(world.pop3Port),
      POP_USER: USER,
      POP_PASS: PASSWORD,
      NUMBER: String(number),
    });
    const poplibMs = Date.now() - pyStarted;
    expect(py.code, py.stderr).toBe(0);
    expect(py.stdout.trim()).toBe(`${big.length} ${sha256(big)}`);
    console.info(`20 MB RETR through POP3: curl ${curlMs} ms, poplib ${poplibMs} ms`);
    expect(curlMs).toBeLessThan(20_000);
  });
});

describe('what POP3 clients hear when something is wrong', () => {
  it('CAPA offers what the proxy takes: USER, SASL PLAIN, response codes, no STLS', async () => {
    const client = await Conversation.connect(world.pop3Port);
    try {
      await client.expect(/^\+OK /);
      client.send('CAPA');
      await client.expect(/^\+OK/);
      const capabilities: string[] = [];
      for (let line = await client.line(); line !== '.'; line = await client.line())
        capabilities.push(line);
      expect(capabilities).toEqual(['USER', 'SASL PLAIN', 'RESP-CODES', 'AUTH-RESP-CODE']);
      client.send('AUTH');
      await client.expect(/^\+OK/);
      await client.expect('PLAIN');
      await client.expect('.');
    } finally {
      client.close();
    }
  });

  it('a wrong password gets -ERR [AUTH] naming the cause (poplib sees the same)', async () => {
    expect(await passReply(USER, 'not the password')).toBe(
      `-ERR [AUTH] Wrong password for ${USER}: it does not decrypt the account's stored OAuth2 tokens`,
    );
    expect(await poplib('auth-inline', 'not the password')).toEqual({
      error: `-ERR [AUTH] Wrong password for ${USER}: it does not decrypt the account's stored OAuth2 tokens`,
    });
  });

  it('an identity provider that is down gets -ERR [SYS/TEMP], and fetchmail takes it as server busy, not an auth failure', async () => {
    await seed({ expired: true });
    await world.idp.refuse();
    try {
      expect(await passReply(USER, PASSWORD)).toMatch(
        new RegExp(
          `^-ERR \\[SYS/TEMP\\] Service temporarily unavailable: Cannot refresh the OAuth2 token for ${USER}: .+try again later$`,
        ),
      );
      const { rc, home, inbox } = await fetchmailSetup('idp-down', PASSWORD);
      const result = await runClient(
        'fetchmail',
        ['-v', '-f', rc, '--pidfile', join(home, 'fetchmail.pid'), '--nodetach', '--nosyslog'],
        {
          env: { FETCHMAILHOME: home, HOME: home },
        },
      );
      const said = result.stderr + result.stdout;
      expect(said).toContain(
        '-ERR [SYS/TEMP] Service temporarily unavailable: Cannot refresh the OAuth2 token',
      );
      // fetchmail 6.4 ignores RFC 3206 codes and reads the text: "lock"/"wait" means lock busy (9),
      // "service" with "unavailable" means server busy (14), anything else an authentication failure (3),
      // which wedges a fetchmail daemon until it is woken. An outage at the identity provider is server busy.
      expect(result.code, said).toBe(14);
      expect(await delivered(inbox)).toEqual([]);
    } finally {
      await world.idp.resume();
    }
  });

  it("a token Dovecot refuses gets -ERR [AUTH] with the server's reason and the command to run", async () => {
    const { FileTokenStore } = await import('../../src/tokens/stores/file-store.js');
    const store = new FileTokenStore(world.tokenStore);
    await store.write(OTHER, (await store.read(USER))!);
    expect(await passReply(OTHER, PASSWORD)).toMatch(
      new RegExp(
        `^-ERR \\[AUTH\\] localhost:${world.dovecot.pop3sPort} refused the OAuth2 login for ${OTHER}: the server rejected the token \\(status 401\\)` +
          `.*If this persists, re-authorise the account: oauth2-mail-proxy authorize ${OTHER}$`,
      ),
    );
  });

  it('an unreachable server gets -ERR [SYS/TEMP] naming it', async () => {
    expect(await passReply(USER, PASSWORD, unreachablePort())).toBe(
      `-ERR [SYS/TEMP] Service temporarily unavailable: Cannot log in to 127.0.0.1:${deadPort}: connection refused. Try again later`,
    );
  });

  it('never logs the password or a token', () => {
    expect(proxy.output).not.toContain(PASSWORD);
    for (const token of tokenValues) expect(proxy.output).not.toContain(token);
  });
});

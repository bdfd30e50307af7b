import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/config/configparser.js';
import { freePorts } from '../peers/free-ports.js';
import { Conversation } from '../support/conversation.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * What a mail client sees through the IMAP proxy when something is wrong, against the real
 * Dovecot and identity provider: each reply says what is wrong and what to do, and tokens on
 * disk survive every temporary failure.
 */
let world: World;
let proxy: ProxyProcess;
let deadPort: number;
const OTHER = 'mallory@example.com';

beforeAll(async () => {
  world = await World.start();
  deadPort = (await freePorts(1))[0]!;
  const unreachable = [
    `[IMAP-${world.ports[3]}]`,
    'server_address = 127.0.0.1',
    `server_port = ${deadPort}`,
    '',
  ].join('\n');
  proxy = await world.startProxy({
    config: world.config(`${unreachable}\n${world.accountSection(OTHER)}`),
    args: ['--provider-timeout', '2', '--authorisation-wait', '0'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});
beforeEach(() => {
  world.idp.resetTokenRequests();
});

async function loginReply(user: string, password: string, port = world.imapPort): Promise<string> {
  const client = await Conversation.connect(port);
  try {
    await client.expect(/^\* OK /);
    client.send(`a1 LOGIN "${user}" "${password}"`);
    let line = await client.line(20_000);
    while (line.startsWith('* ') && !line.startsWith('* BYE')) line = await client.line(20_000);
    return line;
  } finally {
    client.close();
  }
}

const storeBytes = (): Promise<string> => readFile(world.tokenStore, 'utf8');

describe('IMAP login failures a user can act on', () => {
  it('a wrong password is refused and the stored tokens stay exactly as they were', async () => {
    await world.seedTokens();
    const before = await storeBytes();
    expect(await loginReply(USER, 'not the password')).toBe(
      `a1 NO [AUTHENTICATIONFAILED] Wrong password for ${USER}: it does not decrypt the account's stored OAuth2 tokens`,
    );
    expect(await storeBytes()).toBe(before);
    expect(await loginReply(USER, PASSWORD)).toMatch(/^a1 OK /);
  });

  it('slows a password guesser down, but not the correct password', async () => {
    await world.seedTokens();
    const timed = async (password: string): Promise<{ reply: string; ms: number }> => {
      const started = Date.now();
      const reply = await loginReply(USER, password);
      return { reply, ms: Date.now() - started };
    };
    const guesses = [await timed('guess 1'), await timed('guess 2'), await timed('guess 3')];
    for (const guess of guesses)
      expect(guess.reply).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\] Wrong password/);
    expect(guesses.map((guess) => guess.ms >= [500, 1000, 2000][guesses.indexOf(guess)]!)).toEqual([
      true,
      true,
      true,
    ]);
    const correct = await timed(PASSWORD);
    expect(correct.reply).toMatch(/^a1 OK /);
    expect(correct.ms).toBeLessThan(1500);
  });

  it('an unknown account is named in the refusal; the config file only in the log', async () => {
    expect(await loginReply('nobody@example.com', 'x')).toBe(
      'a1 NO [AUTHENTICATIONFAILED] Unknown account nobody@example.com: it is not configured in the proxy',
    );
    expect(proxy.output).toContain(`${proxy.configFile} has no [nobody@example.com] section`);
  });

  it('an expired access token is refreshed once and the rotated refresh token is saved', async () => {
    const seeded = await world.seedTokens({ expired: true });
    const before = parseIni(await storeBytes(), 'store').get(USER)!;

    const replies = await Promise.all(Array.from({ length: 8 }, () => loginReply(USER, PASSWORD)));
    for (const reply of replies) expect(reply).toMatch(/^a1 OK /);
    expect(world.idp.tokenRequests.byGrantType.refresh_token).toBe(1);

    const after = parseIni(await storeBytes(), 'store').get(USER)!;
    expect(after.get('refresh_token')).not.toBe(before.get('refresh_token'));
    expect(Number(after.get('access_token_expiry'))).toBeGreaterThan(Date.now() / 1000 + 600);
    // The provider rotated the refresh token: the seeded one is now dead, so saving the new one mattered.
    const reuse = await fetch(world.idp.urls.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: seeded.refreshToken,
        client_id: world.idp.clientId,
      }),
    });
    expect(reuse.status).toBe(400);
  });

  it('an unreachable identity provider answers UNAVAILABLE and keeps every token', async () => {
    await world.seedTokens({ expired: true });
    const before = await storeBytes();
    await world.idp.refuse();
    try {
      expect(await loginReply(USER, PASSWORD)).toMatch(
        new RegExp(
          `^a1 NO \\[UNAVAILABLE\\] Cannot refresh the OAuth2 token for ${USER}: .+ The stored tokens are kept; try again later$`,
        ),
      );
    } finally {
      await world.idp.resume();
    }
    expect(await storeBytes()).toBe(before);
    expect(await loginReply(USER, PASSWORD)).toMatch(/^a1 OK /);
  });

  it.each(['503', 'html500', 'garbage', 'timeout'] as const)(
    'a token endpoint answering %s is temporary too',
    async (fault) => {
      await world.seedTokens({ expired: true });
      const before = await storeBytes();
      world.idp.failNextToken(fault);
      expect(await loginReply(USER, PASSWORD)).toMatch(
        /^a1 NO \[UNAVAILABLE\] Cannot refresh the OAuth2 token for .* try again later$/,
      );
      expect(await storeBytes()).toBe(before);
    },
  );

  it('a refresh token the provider rejects asks for authorisation, saying how', async () => {
    await world.seedTokens({ expired: true });
    world.idp.failNextToken('invalid_grant');
    expect(await loginReply(USER, PASSWORD)).toMatch(
      new RegExp(
        `^a1 NO \\[UNAVAILABLE\\] ${USER} needs authorising: run: oauth2-mail-proxy authorize ${USER} --config-file \\S+ --cache-store \\S+$`,
      ),
    );
    expect(proxy.output).toMatch(/"event":"refresh_failed".*"kind":"reauthorise"/);
  });

  it('an account with no token is refused at once, not left hanging, when nobody can authorise it', async () => {
    const started = Date.now();
    expect(await loginReply(OTHER, 'pw')).toMatch(
      new RegExp(`^a1 NO \\[UNAVAILABLE\\] ${OTHER} needs authorising: `),
    );
    // Left hanging, it would meet loginReply's own 20 s limit; the margin is for a loaded machine.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a token the server refuses (issued to someone else) gets the server-side reason and the command to run', async () => {
    // The account's stored token belongs to USER, not OTHER: Dovecot refuses it with an error challenge.
    const { FileTokenStore } = await import('../../src/tokens/stores/file-store.js');
    const store = new FileTokenStore(world.tokenStore);
    await world.seedTokens();
    const fields = await store.read(USER);
    await store.write(OTHER, fields!);
    expect(await loginReply(OTHER, PASSWORD)).toBe(
      `a1 NO [AUTHENTICATIONFAILED] localhost:${world.dovecot.imapsPort} refused the OAuth2 login for ${OTHER}: ` +
        'the server rejected the token (status 401): [AUTHENTICATIONFAILED] Authentication failed. ' +
        `If this persists, re-authorise the account: oauth2-mail-proxy authorize ${OTHER}`,
    );
  });

  it('an unreachable mail server gets a BYE that names it', async () => {
    await world.seedTokens();
    expect(await loginReply(USER, PASSWORD, world.ports[3])).toBe(
      `* BYE [UNAVAILABLE] Cannot log in to 127.0.0.1:${deadPort}: connection refused. Try again later`,
    );
  });

  it('never logs the password or a token', async () => {
    const tokens = await world.seedTokens({ expired: true });
    expect(await loginReply(USER, PASSWORD)).toMatch(/^a1 OK /);
    expect(proxy.output).not.toContain(PASSWORD);
    expect(proxy.output).not.toContain(tokens.accessToken);
    expect(proxy.output).not.toContain(tokens.refreshToken);
  });
});

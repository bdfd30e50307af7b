import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimProblems, readAccessTokenClaims } from '../../src/doctor/token-claims.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { makeTestCa } from '../peers/certs.js';
import { freePorts } from '../peers/free-ports.js';
import { OFFICE365_TEST_SCOPE } from '../peers/idp.js';
import { startSmtpUpstream, type SmtpUpstream } from '../peers/smtp-upstream.js';
import { PROXY_BIN, ProxyProcess } from '../support/proxy-process.js';
import { spawnInTerminal } from '../support/terminal.js';
import { PASSWORD, USER, World } from '../support/world.js';
import { openTokens, sealTokens } from '../support/sealed-tokens.js';

/**
 * `oauth2-mail-proxy check <account>` against the real peers: the test identity provider,
 * Dovecot (IMAP and POP3 over TLS) and an Office 365-shaped SMTP submission server. Each test
 * runs the built CLI as a user would, with the password piped in, and reads its advice.
 */
let world: World;
let smtp: SmtpUpstream;
let smtpCaFile: string;
let deadPort: number;
/** Every token value put in the store, to check none is ever printed. */
const tokenValues: string[] = [];
const OTHER = 'mallory@example.com';

const ports = {
  get smtp(): number {
    return world.ports[2]!;
  },
  get extra(): number {
    return world.ports[3]!;
  },
};

function smtpSection(): string {
  return [
    `[SMTP-${ports.smtp}]`,
    'server_address = localhost',
    `server_port = ${smtp.port}`,
    'server_starttls = True',
    `server_ca_file = ${smtpCaFile}`,
    '',
  ].join('\n');
}

/** IMAP, POP3 and SMTP in front of the real peers, plus `extra` sections. */
function healthyConfig(extra = ''): string {
  return world.config(`${smtpSection()}\n${extra}`);
}

interface CheckRun {
  readonly code: number | null;
  readonly output: string;
}

/** Runs `check` with `config` as the config file, typing `password` (if any) as the piped stdin. */
async function runCheck(
  config: string,
  options: { account?: string; password?: string; timeout?: number } = {},
): Promise<CheckRun> {
  const configFile = join(world.dir, 'check.ini');
  await writeFile(configFile, config);
  const run = ProxyProcess.command(
    ['check', options.account ?? USER, '--timeout', String(options.timeout ?? 5)],
    { configFile, tokenStore: world.tokenStore },
  );
  if (options.password !== undefined) run.type(`${options.password}\n`);
  run.child.stdin?.end();
  const code = await run.exit();
  for (const value of tokenValues) expect(run.output).not.toContain(value);
  return { code, output: run.output };
}

/** The line of the check whose title starts with `title`, with its details. */
function checkLine(output: string, title: string): string {
  const lines = output.split('\n');
  const index = lines.findIndex(
    (line) =>
      /^(\[ OK \]|\[FAIL\]|\[WARN\]|\[SKIP\]) /.test(line) && line.slice(7).startsWith(title),
  );
  if (index < 0)
    throw new Error(`no check line starting with ${JSON.stringify(title)} in:\n${output}`);
  const details = [];
  for (let next = index + 1; next < lines.length && lines[next]!.startsWith('         '); next += 1)
    details.push(lines[next]!.trim());
  return [lines[index], ...details].join('\n');
}

const imap = (): string => `IMAP localhost:${world.dovecot.imapsPort}`;
const pop = (): string => `POP localhost:${world.dovecot.pop3sPort}`;
const smtpName = (): string => `SMTP localhost:${smtp.port}`;
const authorizeCommand = (): string =>
  `oauth2-mail-proxy authorize ${USER} --config-file ${join(world.dir, 'check.ini')} --cache-store ${world.tokenStore}`;

async function seed(user = USER): Promise<void> {
  const issued = await world.idp.issueTokensFor(user, OFFICE365_TEST_SCOPE);
  await storeTokens({
    accessToken: issued.accessToken,
    refreshToken: issued.refreshToken,
    expiresIn: issued.expiresIn,
  });
}

async function storeTokens(tokens: {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}): Promise<void> {
  tokenValues.push(tokens.accessToken, tokens.refreshToken);
  const fields = await sealTokens(
    {
      accessToken: tokens.accessToken,
      accessTokenExpiry: Math.floor(Date.now() / 1000) + tokens.expiresIn,
      refreshToken: tokens.refreshToken,
    },
    PASSWORD,
  );
  await new FileTokenStore(world.tokenStore).write(USER, fields);
}

/** The refresh token stored for USER, decrypted. */
async function storedRefreshToken(): Promise<string | undefined> {
  const fields = await new FileTokenStore(world.tokenStore).read(USER);
  return fields ? (await openTokens(fields, PASSWORD)).refreshToken : undefined;
}

/** An unsigned-looking JWT with these claims (the doctor reads claims, it never verifies them). */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ typ: 'JWT', alg: 'RS256', kid: 'test' })}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;
}

beforeAll(async () => {
  world = await World.start();
  const certDir = join(world.dir, 'smtp-certs');
  await mkdir(certDir);
  const certs = await makeTestCa(certDir);
  smtpCaFile = certs.caFile;
  smtp = await startSmtpUpstream({ idp: world.idp, security: 'starttls', certs });
  deadPort = (await freePorts(1))[0]!;
  await world.dovecot.deliver(USER, Buffer.from('Subject: doctor\r\n\r\nhello\r\n'));
});
afterAll(async () => {
  await smtp?.stop();
  await world?.stop();
});
beforeEach(async () => {
  await seed();
});

describe('check on a healthy account', () => {
  it('shows the configuration, refreshes, logs in to every upstream and exits 0', async () => {
    const before = await storedRefreshToken();
    const { code, output } = await runCheck(healthyConfig(), { password: PASSWORD });
    expect(code, output).toBe(0);

    expect(output).toContain(`Checking ${USER}`);
    expect(output).toMatch(new RegExp(`^Account section +\\[${USER}\\]$`, 'm'));
    expect(output).toMatch(/^Flow +authorization_code with PKCE$/m);
    expect(output).toMatch(new RegExp(`^Token endpoint +${world.idp.urls.token}$`, 'm'));
    expect(output).toMatch(new RegExp(`^Device endpoint +${world.idp.urls.devicecode} `, 'm'));
    expect(output).toMatch(/^Client +\S+ \(public client, no secret\)$/m);
    expect(output).toContain(
      `[IMAP-${world.imapPort}] localhost:${world.dovecot.imapsPort}, implicit TLS, extra CA ${world.dovecot.caFile}`,
    );
    expect(output).toContain(`[SMTP-${ports.smtp}] localhost:${smtp.port}, STARTTLS`);

    expect(checkLine(output, 'scopes:')).toBe('[ OK ] scopes: cover IMAP, POP, SMTP');
    expect(checkLine(output, 'stored tokens:')).toMatch(
      /^\[ OK \] stored tokens: decrypted from .*tokens\.ini \(refresh token present; access token valid until /,
    );
    expect(checkLine(output, 'token refresh:')).toMatch(
      /^\[ OK \] token refresh: new access token valid until .*; the rotated refresh token was saved$/,
    );
    expect(checkLine(output, 'access token claims:')).toMatch(
      /^\[WARN\] access token claims: not checked, the token is opaque/,
    );
    expect(checkLine(output, imap())).toBe(
      `[ OK ] ${imap()}: XOAUTH2 login as ${USER} accepted; NOOP OK`,
    );
    expect(checkLine(output, pop())).toMatch(
      new RegExp(
        `^\\[ OK \\] ${pop()}: XOAUTH2 login as ${USER} accepted; STAT: 1 message, \\d+ bytes$`,
      ),
    );
    expect(checkLine(output, smtpName())).toBe(
      `[ OK ] ${smtpName()}: XOAUTH2 login as ${USER} accepted; NOOP 250`,
    );
    expect(output).toMatch(/\nAll 7 checks passed \(1 warning\)\.\n$/);
    expect(output).not.toContain(PASSWORD);

    // The rotated refresh token was saved: the old one is gone, and the new one works (the
    // identity provider revokes the whole grant if an old one is reused, as Microsoft may).
    const after = await storedRefreshToken();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    tokenValues.push(after!);
    expect((await runCheck(healthyConfig(), { password: PASSWORD })).code).toBe(0);
  });
});

describe('check in a terminal', () => {
  it('asks for the password without echoing it and marks each check with ✓', async () => {
    const configFile = join(world.dir, 'check.ini');
    await writeFile(configFile, healthyConfig());
    const argv = [
      process.execPath,
      PROXY_BIN,
      'check',
      USER,
      '--config-file',
      configFile,
      '--cache-store',
      world.tokenStore,
    ];
    const child = spawnInTerminal(argv, { ...process.env, LANG: 'C.UTF-8', TERM: 'xterm' });
    let output = '';
    let typed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!typed && output.includes('(it decrypts the stored tokens): ')) {
        typed = true;
        // A person types after reading the prompt; typing at once could beat the switch to no-echo.
        setTimeout(() => child.stdin.write(`${PASSWORD}\r`), 300);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const text = output.replace(/\r\n/g, '\n');
    expect(code, text).toBe(0);
    expect(text).not.toContain(PASSWORD);
    expect(text).toMatch(
      new RegExp(`^✓ ${imap()}: XOAUTH2 login as ${USER} accepted; NOOP OK$`, 'm'),
    );
    expect(text).toMatch(/^! access token claims: not checked, the token is opaque/m);
    expect(text).toMatch(/\nAll 7 checks passed \(1 warning\)\.\n$/);
  });
});

describe('check explains what is wrong', () => {
  it('a wrong password: says so, touches nothing, exits 1', async () => {
    const before = await readFile(world.tokenStore, 'utf8');
    const { code, output } = await runCheck(healthyConfig(), { password: 'not the password' });
    expect(code).toBe(1);
    expect(checkLine(output, 'stored tokens:')).toBe(
      [
        `[FAIL] stored tokens: wrong password, it does not decrypt the tokens stored for ${USER}`,
        'Give the password the mail client logs in to the proxy with: the tokens were encrypted with it.',
        `If that password has changed, authorise again to store the tokens under the new one: ${authorizeCommand()}`,
      ].join('\n'),
    );
    expect(checkLine(output, imap())).toBe(`[SKIP] ${imap()}: not checked (no access token)`);
    expect(await readFile(world.tokenStore, 'utf8')).toBe(before);
  });

  it('no tokens yet: names the exact authorize command without asking for a password', async () => {
    const { code, output } = await runCheck(
      healthyConfig(world.accountSection('new.user@example.com')),
      { account: 'new.user@example.com' },
    );
    expect(code).toBe(1);
    expect(output).not.toContain('Password your mail client uses');
    expect(checkLine(output, 'stored tokens:')).toBe(
      [
        '[FAIL] stored tokens: none for new.user@example.com; the account needs authorising',
        `Authorise it, signing in as new.user@example.com: ${authorizeCommand().replace(USER, 'new.user@example.com')}`,
      ].join('\n'),
    );
  });

  it('invalid_grant: the refresh token is dead, authorise again with this command', async () => {
    world.idp.failNextToken('invalid_grant');
    const { code, output } = await runCheck(healthyConfig(), { password: PASSWORD });
    expect(code).toBe(1);
    const refresh = checkLine(output, 'token refresh:');
    expect(refresh).toMatch(
      /^\[FAIL\] token refresh: Refreshing the access token failed: invalid_grant \(AADSTS70000: /,
    );
    expect(refresh).toContain(`Authorise again, signing in as ${USER}: ${authorizeCommand()}`);
    // The stored access token is still valid, so the servers are still checked with it.
    expect(refresh).toContain('The checks below use the stored access token, still valid until');
    expect(checkLine(output, imap())).toMatch(/^\[ OK \]/);
    expect(output).toMatch(/\n1 of 8 checks failed \(1 warning\): token refresh\.\n$/);
  });

  it('SMTP AUTH disabled for the tenant (535 5.7.139): re-authorising will not help, the admin must enable it', async () => {
    smtp.failNextAuth('smtp-auth-disabled');
    const { code, output } = await runCheck(healthyConfig(), { password: PASSWORD });
    expect(code).toBe(1);
    const line = checkLine(output, smtpName());
    expect(line).toMatch(
      new RegExp(
        `^\\[FAIL\\] ${smtpName()}: SMTP AUTH is disabled for this mailbox or tenant \\(535 5\\.7\\.139 .*SmtpClientAuthentication is disabled`,
      ),
    );
    expect(line).toContain('re-authorising will NOT help');
    expect(line).toContain(
      `Set-CASMailbox -Identity ${USER} -SmtpClientAuthenticationDisabled $false`,
    );
    expect(line).not.toContain('oauth2-mail-proxy authorize');
    expect(checkLine(output, imap())).toMatch(/^\[ OK \]/);
    expect(checkLine(output, pop())).toMatch(/^\[ OK \]/);
  });

  it('the identity provider is down: says it cannot be reached and that the tokens are fine', async () => {
    const before = await readFile(world.tokenStore, 'utf8');
    await world.idp.refuse();
    let run: CheckRun;
    try {
      run = await runCheck(world.config(), { password: PASSWORD });
    } finally {
      await world.idp.resume();
    }
    expect(run.code).toBe(1);
    const origin = new URL(world.idp.urls.token).origin;
    expect(checkLine(run.output, 'token refresh:')).toMatch(
      new RegExp(
        `^\\[FAIL\\] token refresh: Refreshing the access token failed: network error \\(ECONNREFUSED\\)\\n` +
          `The identity provider ${origin} cannot be reached \\(connection failed\\)\\.\\n` +
          '.*network connection and firewall, and token_url\\.\\n' +
          'Nothing is wrong with the stored tokens; they were kept\\.',
      ),
    );
    expect(await readFile(world.tokenStore, 'utf8')).toBe(before);
  });

  it('an unreachable upstream: names the section and the keys to check', async () => {
    const dead = [
      `[IMAP-${ports.extra}]`,
      'server_address = 127.0.0.1',
      `server_port = ${deadPort}`,
      '',
    ].join('\n');
    const { code, output } = await runCheck(healthyConfig(dead), { password: PASSWORD });
    expect(code).toBe(1);
    expect(checkLine(output, `IMAP 127.0.0.1:${deadPort}`)).toBe(
      [
        `[FAIL] IMAP 127.0.0.1:${deadPort}: cannot connect (connection refused)`,
        `Check server_address and server_port in [IMAP-${ports.extra}] of ${join(world.dir, 'check.ini')}, and that this machine can reach the server (firewall, VPN).`,
      ].join('\n'),
    );
    expect(checkLine(output, imap())).toMatch(/^\[ OK \]/);
  });

  it('an upstream certificate from a private CA: names server_ca_file', async () => {
    const privateCa = [
      `[IMAP-${ports.extra}]`,
      'server_address = localhost',
      `server_port = ${world.dovecot.imapsPort}`,
      '',
    ].join('\n');
    const { code, output } = await runCheck(healthyConfig(privateCa), { password: PASSWORD });
    expect(code).toBe(1);
    const lines = output.split('\n');
    const failed = lines.findIndex((line) => line.startsWith(`[FAIL] ${imap()}: TLS failed`));
    expect(failed, output).toBeGreaterThan(0);
    expect(lines.slice(failed, failed + 4).join('\n')).toContain(
      `set server_ca_file = /path/to/ca.pem in [IMAP-${ports.extra}]`,
    );
  });

  it('a token for another user: Dovecot rejects it, and the check says whose it must be', async () => {
    await seed(OTHER);
    const { code, output } = await runCheck(healthyConfig(), { password: PASSWORD });
    expect(code).toBe(1);
    expect(checkLine(output, 'token refresh:')).toMatch(/^\[ OK \]/);
    const line = checkLine(output, imap());
    expect(line).toMatch(new RegExp(`^\\[FAIL\\] ${imap()}: the server rejected the token`));
    expect(line).toContain(
      `- the account was authorised by signing in as someone other than ${USER}`,
    );
    expect(line).toContain(`Authorise again, signing in as ${USER}: ${authorizeCommand()}`);
    expect(checkLine(output, pop())).toMatch(/^\[FAIL\] .*the server rejected the token/);
    expect(checkLine(output, smtpName())).toMatch(/^\[FAIL\] .*the server rejected the token/);
  });

  it('a Microsoft Graph token (wrong scope host), checked with the stored token while the provider is busy', async () => {
    const issued = await world.idp.issueTokensFor(USER, OFFICE365_TEST_SCOPE);
    const graphToken = jwt({
      aud: 'https://graph.microsoft.com',
      scp: 'IMAP.AccessAsUser.All SMTP.Send User.Read',
      upn: USER,
      tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      exp: Math.floor(Date.now() / 1000) + 3600,
    });
    await storeTokens({
      accessToken: graphToken,
      refreshToken: issued.refreshToken,
      expiresIn: 3600,
    });
    world.idp.failNextToken('503');
    const { code, output } = await runCheck(healthyConfig(), { password: PASSWORD });
    expect(code).toBe(1);
    expect(checkLine(output, 'token refresh:')).toContain(
      'answered, but cannot serve the request right now',
    );
    const claims = checkLine(output, 'access token claims:');
    expect(claims).toMatch(
      new RegExp(
        `^\\[FAIL\\] access token claims: user ${USER}; audience https://graph\\.microsoft\\.com; scopes IMAP\\.AccessAsUser\\.All SMTP\\.Send User\\.Read; tenant 72f988bf-`,
      ),
    );
    expect(claims).toContain(
      'Mismatch: the token is for Microsoft Graph (aud https://graph.microsoft.com): IMAP, POP and SMTP servers reject it.',
    );
    expect(checkLine(output, imap())).toMatch(
      /\nWhy(, most likely)?: the token is for Microsoft Graph/,
    );
  });

  it('configuration mistakes found before any sign-in: Graph scopes, a disabled client ID, a redirect Thunderbird does not allow', async () => {
    const account = (name: string, lines: string[]): string =>
      world
        .accountSection(name)
        .replace(/^(oauth2_scope|client_id|redirect_uri) = .*\n/gm, '')
        .concat(lines.join('\n'), '\n');
    const config = healthyConfig(
      [
        account('graph@example.com', [
          `client_id = ${world.idp.clientId}`,
          'redirect_uri = https://localhost',
          'oauth2_scope = https://graph.microsoft.com/IMAP.AccessAsUser.All offline_access',
        ]),
        account('old.client@example.com', [
          'client_id = 08162f7c-0fd2-4200-a84a-f25a4db0b584',
          'redirect_uri = http://localhost',
          `oauth2_scope = ${OFFICE365_TEST_SCOPE}`,
        ]),
        account('redirect@example.com', [
          'client_id = 9e5f94bc-e8a4-4e73-b8be-63364c29d753',
          'redirect_uri = http://localhost:8080',
          `oauth2_scope = ${OFFICE365_TEST_SCOPE}`,
        ]),
      ].join('\n'),
    );

    const graph = await runCheck(config, { account: 'graph@example.com' });
    expect(graph.code).toBe(1);
    expect(checkLine(graph.output, 'scopes:')).toMatch(
      /^\[FAIL\] scopes: https:\/\/graph\.microsoft\.com\/IMAP\.AccessAsUser\.All asks for a Microsoft Graph token\nIMAP, POP and SMTP servers reject Graph tokens/,
    );
    expect(checkLine(graph.output, 'scopes:')).toContain(
      'oauth2_scope = https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access',
    );

    const old = await runCheck(config, { account: 'old.client@example.com' });
    expect(old.code).toBe(1);
    expect(checkLine(old.output, 'client:')).toMatch(
      /^\[FAIL\] client: 08162f7c-0fd2-4200-a84a-f25a4db0b584 is Thunderbird's old client ID, which Microsoft disabled \(AADSTS7000112\)\n.*re-authorising with it cannot help/,
    );

    const redirect = await runCheck(config, { account: 'redirect@example.com' });
    expect(redirect.code).toBe(1);
    expect(checkLine(redirect.output, 'client:')).toBe(
      [
        "[FAIL] client: Thunderbird's client ID only allows redirect_uri = https://localhost, not http://localhost:8080",
        'Signing in will fail with AADSTS50011 (the redirect URI does not match the app registration).',
        `Set redirect_uri = https://localhost in [redirect@example.com] of ${join(world.dir, 'check.ini')}.`,
      ].join('\n'),
    );
  });

  it('a client ID the provider refuses at refresh: says which key to fix, and that re-authorising alone will not help', async () => {
    const config = healthyConfig().replace(
      `client_id = ${world.idp.clientId}`,
      'client_id = 08162f7c-0fd2-4200-a84a-f25a4db0b584',
    );
    const { code, output } = await runCheck(config, { password: PASSWORD });
    expect(code).toBe(1);
    expect(checkLine(output, 'client:')).toMatch(
      /^\[FAIL\] client: 08162f7c-.* disabled \(AADSTS7000112\)/,
    );
    const refresh = checkLine(output, 'token refresh:');
    expect(refresh).toMatch(
      /^\[FAIL\] token refresh: Refreshing the access token failed: unauthorized_client \(AADSTS700016: /,
    );
    expect(refresh).toContain(
      `Fix client_id in [${USER}] of ${join(world.dir, 'check.ini')}; re-authorising alone will not help.`,
    );
  });

  it('an unknown account or a broken config file exits 2', async () => {
    const unknown = await runCheck(healthyConfig(), { account: 'nobody@example.com' });
    expect(unknown.code).toBe(2);
    expect(unknown.output).toContain(
      `has no account section for nobody@example.com (account sections: [${USER}])`,
    );
    const broken = await runCheck('[IMAP-1993]\n');
    expect(broken.code).toBe(2);
    expect(broken.output).toContain('server_address');
  });
});

describe('reading access token claims', () => {
  const expected = {
    loginName: USER,
    protocols: ['IMAP', 'POP', 'SMTP'] as const,
    family: 'microsoft' as const,
    now: 1_700_000_000,
  };
  const outlook = {
    aud: 'https://outlook.office.com',
    scp: 'IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send',
    upn: USER,
    exp: 1_700_003_600,
    tid: 't',
  };

  it('a token for Exchange Online with every scope, for the right user, fits', () => {
    expect(claimProblems(readAccessTokenClaims(jwt(outlook))!, expected)).toEqual([]);
    expect(
      claimProblems(
        readAccessTokenClaims(jwt({ ...outlook, aud: '00000002-0000-0ff1-ce00-000000000000' }))!,
        expected,
      ),
    ).toEqual([]);
  });

  it('names each mismatch: another user, a missing protocol scope, another audience, an app token without the role', () => {
    expect(
      claimProblems(
        readAccessTokenClaims(
          jwt({ ...outlook, upn: undefined, unique_name: 'Mallory@Example.com' }),
        )!,
        expected,
      ),
    ).toEqual([
      {
        kind: 'user',
        text: `the token belongs to Mallory@Example.com, not ${USER}: the server refuses it (Office 365 may accept the login, then drop the session)`,
      },
    ]);
    expect(
      claimProblems(
        readAccessTokenClaims(jwt({ ...outlook, scp: 'IMAP.AccessAsUser.All' }))!,
        expected,
      ).map((problem) => problem.text),
    ).toEqual([
      'the token lacks POP.AccessAsUser.All, SMTP.Send (it has IMAP.AccessAsUser.All): the POP, SMTP servers will refuse it',
    ]);
    expect(
      claimProblems(
        readAccessTokenClaims(jwt({ ...outlook, aud: 'api://something-else' }))!,
        expected,
      ).map((problem) => problem.kind),
    ).toEqual(['audience']);
    const appOnly = {
      aud: 'https://outlook.office365.com',
      roles: ['IMAP.AccessAsApp'],
      exp: 1_700_003_600,
    };
    expect(
      claimProblems(readAccessTokenClaims(jwt(appOnly))!, expected).map((problem) => problem.text),
    ).toEqual([
      'the token lacks POP.AccessAsApp, SMTP.SendAsApp (it has IMAP.AccessAsApp): the POP, SMTP servers will refuse it',
    ]);
  });

  it('opaque tokens (personal Microsoft accounts, Google) have no claims to read', () => {
    expect(readAccessTokenClaims('EwBwA8l6BAAUkj1yFake0paqueT0ken')).toBeUndefined();
    expect(readAccessTokenClaims('ya29.a0AfH6SMB.not-json')).toBeUndefined();
  });
});

/**
 * `oauth2_flow = service_account` without a network: reading the service account's key the ways
 * email-oauth2-proxy configs give it (`client_id = file` with a path, `client_id = key` with the
 * JSON on continuation lines), what is said when it is unusable (never the key itself), the signed
 * assertion (decoded and its signature checked with the public key), how Google's refusals are
 * classified, what goes over the wire (a scripted token endpoint answers as Google does), and the
 * start-up warnings about where the key is kept. The grant against the test identity provider,
 * with Dovecot and real mail clients, is in test/e2e/service-account.test.ts.
 */
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { AccountConfig } from '../../src/config/types.js';
import { startupWarnings } from '../../src/daemon/startup-warnings.js';
import {
  ASSERTION_LIFETIME_SECONDS,
  classifyOAuthErrorResponse,
  GOOGLE_TOKEN_URI,
  OAuthError,
  parseServiceAccountKey,
  JWT_BEARER_GRANT,
  readServiceAccountKey,
  serviceAccountAssertion,
  serviceAccountKeyType,
  serviceAccountToken,
} from '../../src/oauth/index.js';

const IMAP_SERVER = '[IMAP-1993]\nserver_address = imap.gmail.com\n';
const CLIENT_EMAIL = 'mail-proxy@example-project.iam.gserviceaccount.com';
const KEY_ID = '0123456789abcdef0123456789abcdef01234567';

const { privateKey, publicKey } = ((): { privateKey: string; publicKey: KeyObject } => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey,
  };
})();
/** A line from the middle of the private key, which no message may ever contain. */
const KEY_BODY_LINE = privateKey.split('\n')[5]!;

/** A key as Google's console downloads it; `changes` replace (or, as undefined, remove) fields. */
function keyJson(changes: Record<string, unknown> = {}): string {
  const key: Record<string, unknown> = {
    type: 'service_account',
    project_id: 'example-project',
    private_key_id: KEY_ID,
    private_key: privateKey,
    client_email: CLIENT_EMAIL,
    client_id: '112233445566778899001',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: GOOGLE_TOKEN_URI,
    universe_domain: 'googleapis.com',
    ...changes,
  };
  return `${JSON.stringify(key, null, 2)}\n`;
}

function account(clientId: string, clientSecret?: string): AccountConfig {
  return {
    name: '@example.com',
    permissionUrl: '',
    tokenUrl: '',
    scope: 'https://mail.google.com/',
    redirectUri: '',
    clientId,
    ...(clientSecret !== undefined && { clientSecret }),
    flow: 'service_account',
    usePkce: false,
  };
}

/** The config error an unusable key gives; checks it never quotes the key. */
async function keyProblem(reading: Promise<unknown>): Promise<OAuthError> {
  const err = await reading.then(
    () => expect.fail('the key should have been refused'),
    (error: unknown) => error,
  );
  expect(err).toBeInstanceOf(OAuthError);
  const problem = err as OAuthError;
  expect(problem.kind).toBe('config');
  expect(`${problem.message} ${problem.hint}`).not.toContain(KEY_BODY_LINE);
  expect(`${problem.message} ${problem.hint}`).not.toContain('BEGIN PRIVATE KEY');
  return problem;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-service-account-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('client_id says what client_secret holds', () => {
  it('is file or key, in any case', () => {
    expect(serviceAccountKeyType(account('file'))).toBe('file');
    expect(serviceAccountKeyType(account('key'))).toBe('key');
    expect(serviceAccountKeyType(account('File'))).toBe('file');
  });

  it('anything else is a config error naming client_id, as email-oauth2-proxy says it', async () => {
    const problem = await keyProblem(readServiceAccountKey(account(CLIENT_EMAIL, keyJson())));
    expect(problem).toMatchObject({
      configKey: 'client_id',
      message: 'with oauth2_flow = service_account, client_id must be set to `file` or `key`',
    });
    expect(problem.hint).toMatch(
      /client_id = file and client_secret to the path .* or client_id = key and client_secret to the JSON key itself/,
    );
  });
});

describe('client_id = file', () => {
  it('reads the key file client_secret names', async () => {
    const path = join(dir, 'key.json');
    await writeFile(path, keyJson(), { mode: 0o600 });
    const key = await readServiceAccountKey(account('file', path));
    expect(key).toMatchObject({
      clientEmail: CLIENT_EMAIL,
      privateKeyId: KEY_ID,
      clientId: '112233445566778899001',
      source: `the key file ${path}`,
    });
    expect(key.tokenUri.href).toBe(GOOGLE_TOKEN_URI);
    expect(key.privateKey.asymmetricKeyType).toBe('rsa');
  });

  it('a missing file is a config error naming client_secret and the file; a relative path is shown resolved', async () => {
    const missing = join(dir, 'missing.json');
    expect(await keyProblem(readServiceAccountKey(account('file', missing)))).toMatchObject({
      configKey: 'client_secret',
      message: `client_secret names the service account key file ${missing}, which does not exist`,
    });
    const relativePath = relative(process.cwd(), missing);
    expect((await keyProblem(readServiceAccountKey(account('file', relativePath)))).message).toBe(
      `client_secret names the service account key file ${relativePath} (relative to the working directory: ${missing}), which does not exist`,
    );
  });

  it('a directory, or a file far too big to be a key, is said to be one', async () => {
    await mkdir(join(dir, 'keys'));
    expect(
      (await keyProblem(readServiceAccountKey(account('file', join(dir, 'keys'))))).message,
    ).toMatch(/, which is a directory$/);
    await writeFile(join(dir, 'big.json'), Buffer.alloc(300 * 1024, 0x20));
    expect(
      (await keyProblem(readServiceAccountKey(account('file', join(dir, 'big.json'))))).message,
    ).toMatch(/, which is too large to be one \(307200 bytes\)$/);
  });

  it('an empty client_secret is a config error', async () => {
    expect(await keyProblem(readServiceAccountKey(account('file', '  ')))).toMatchObject({
      configKey: 'client_secret',
      hint: 'Set client_secret to the path of the JSON key file.',
    });
  });
});

describe('client_id = key', () => {
  it('reads the JSON key pasted into the config over indented continuation lines', () => {
    const pasted = keyJson()
      .trimEnd()
      .split('\n')
      .map((line, index) => (index === 0 ? line : `    ${line}`))
      .join('\n');
    const config = parseConfig(
      `${IMAP_SERVER}[emailproxy]\nallow_catch_all_accounts = True\n\n[@example.com]\noauth2_flow = service_account\n` +
        `oauth2_scope = https://mail.google.com/\nclient_id = key\nclient_secret = ${pasted}\n`,
      join(dir, 'config.ini'),
    );
    const section = config.accounts.find((candidate) => candidate.name === '@example.com')!;
    expect(section.clientSecret).toContain('\n');
    const key = parseServiceAccountKey(section.clientSecret!, 'the key in client_secret');
    expect(key).toMatchObject({
      clientEmail: CLIENT_EMAIL,
      privateKeyId: KEY_ID,
      source: 'the key in client_secret',
    });
  });

  it('a cut-off or unindented paste is "not valid JSON", without quoting it', async () => {
    const cut = keyJson().slice(0, keyJson().indexOf(KEY_BODY_LINE) + 20);
    expect(await keyProblem(readServiceAccountKey(account('key', cut)))).toMatchObject({
      configKey: 'client_secret',
      message: 'the key in client_secret is not valid JSON',
      hint: 'Use the JSON key exactly as Google issued it; written in the config file, every line after the first must be indented.',
    });
  });

  it('a key without client_email or private_key, or with a private key that is not one, says which', async () => {
    expect(
      (
        await keyProblem(
          readServiceAccountKey(account('key', keyJson({ client_email: undefined }))),
        )
      ).message,
    ).toBe('the key in client_secret has no client_email');
    expect(
      (await keyProblem(readServiceAccountKey(account('key', keyJson({ private_key: undefined })))))
        .message,
    ).toBe('the key in client_secret has no private_key');
    const mangled = privateKey.replace(KEY_BODY_LINE, KEY_BODY_LINE.slice(0, 30));
    expect(
      (await keyProblem(readServiceAccountKey(account('key', keyJson({ private_key: mangled })))))
        .message,
    ).toBe('the key in client_secret has a private_key that is not a readable PEM private key');
  });

  it('an EC key cannot sign RS256 assertions', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(
      (await keyProblem(readServiceAccountKey(account('key', keyJson({ private_key: ec })))))
        .message,
    ).toBe('the key in client_secret has a private_key of type ec, not RSA');
  });

  it("an OAuth client's JSON, or a key of another type, is told apart from a service account key", async () => {
    const oauthClient = JSON.stringify({
      installed: { client_id: 'x.apps.googleusercontent.com', client_secret: 'not a key' },
    });
    expect((await keyProblem(readServiceAccountKey(account('key', oauthClient)))).message).toBe(
      "the key in client_secret is an OAuth client's JSON, not a service account key",
    );
    expect(
      (
        await keyProblem(
          readServiceAccountKey(account('key', keyJson({ type: 'authorized_user' }))),
        )
      ).message,
    ).toBe('the key in client_secret is a key of type "authorized_user", not "service_account"');
  });

  it("token_uri defaults to Google's, and must be https unless it is a loopback test server", async () => {
    expect(
      (await readServiceAccountKey(account('key', keyJson({ token_uri: undefined })))).tokenUri
        .href,
    ).toBe(GOOGLE_TOKEN_URI);
    expect(
      (
        await readServiceAccountKey(
          account('key', keyJson({ token_uri: 'http://127.0.0.1:8080/token' })),
        )
      ).tokenUri.href,
    ).toBe('http://127.0.0.1:8080/token');
    expect(
      await keyProblem(
        readServiceAccountKey(
          account('key', keyJson({ token_uri: 'http://oauth2.example.com/token' })),
        ),
      ),
    ).toMatchObject({
      configKey: 'client_secret',
      message: 'the key in client_secret has a token_uri that is not an https:// address',
    });
  });
});

describe('the signed assertion', () => {
  const decode = (part: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

  it('is an RS256 JWT naming the service account, the scopes, the token endpoint and the user, valid for an hour', () => {
    const key = parseServiceAccountKey(keyJson(), 'the key in client_secret');
    const jwt = serviceAccountAssertion(key, {
      scope: 'https://mail.google.com/',
      subject: 'jane@example.com',
      issuedAt: 1_700_000_000,
    });
    const parts = jwt.split('.');
    expect(parts).toHaveLength(3);
    const [header, claims, signature] = parts as [string, string, string];
    expect(decode(header)).toEqual({ alg: 'RS256', typ: 'JWT', kid: KEY_ID });
    expect(decode(claims)).toEqual({
      iss: CLIENT_EMAIL,
      scope: 'https://mail.google.com/',
      aud: GOOGLE_TOKEN_URI,
      sub: 'jane@example.com',
      iat: 1_700_000_000,
      exp: 1_700_000_000 + ASSERTION_LIFETIME_SECONDS,
    });
    expect(ASSERTION_LIFETIME_SECONDS).toBe(3600);
    expect(
      verify(
        'sha256',
        Buffer.from(`${header}.${claims}`),
        publicKey,
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(true);
    // The signature covers the claims: another user in them no longer verifies.
    const forged = Buffer.from(
      JSON.stringify({ ...decode(claims), sub: 'ceo@example.com' }),
    ).toString('base64url');
    expect(
      verify(
        'sha256',
        Buffer.from(`${header}.${forged}`),
        createPublicKey(privateKey),
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(false);
  });

  it("joins the scopes with single spaces, uses the key's token_uri as audience, and leaves kid out when the key has no id", () => {
    const key = parseServiceAccountKey(
      keyJson({ private_key_id: undefined, token_uri: 'http://127.0.0.1:9/token' }),
      'the key',
    );
    const [header, claims] = serviceAccountAssertion(key, {
      scope: ' https://mail.google.com/   openid ',
      subject: 'jane@example.com',
    }).split('.') as [string, string];
    expect(decode(header)).toEqual({ alg: 'RS256', typ: 'JWT' });
    const decoded = decode(claims);
    expect(decoded).toMatchObject({
      scope: 'https://mail.google.com/ openid',
      aud: 'http://127.0.0.1:9/token',
    });
    expect(Math.abs(Number(decoded.iat) - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe("Google's refusals of an assertion", () => {
  const refusal = (error: string, description: string, status = 400): OAuthError =>
    classifyOAuthErrorResponse({ error, errorDescription: description, status }, 'service_account');

  it('missing domain-wide delegation is a config problem saying where to grant it', () => {
    const failure = refusal(
      'unauthorized_client',
      'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
      401,
    );
    expect(failure).toMatchObject({ kind: 'config', code: 'unauthorized_client', status: 401 });
    expect(failure.message).toBe(
      'The service account token request failed: unauthorized_client (Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.)',
    );
    expect(failure.hint).toMatch(
      /^Domain-wide delegation is missing .* Google Admin console \(Security > Access and data control > API controls > Domain-wide delegation\) add the service account's client ID/,
    );
  });

  it('invalid_grant is never "authorise again": its description says whether the key, the user or the clock is wrong', () => {
    expect(refusal('invalid_grant', 'Invalid JWT Signature.')).toMatchObject({
      kind: 'config',
      configKey: 'client_secret',
      hint: expect.stringMatching(/key was probably deleted or disabled; create a new JSON key/),
    });
    expect(refusal('invalid_grant', 'Invalid email or User ID')).toMatchObject({
      kind: 'config',
      hint: expect.stringMatching(/login name as a user of the Workspace domain/),
    });
    expect(refusal('invalid_grant', 'Invalid grant: account not found')).toMatchObject({
      kind: 'config',
      configKey: 'client_secret',
      hint: expect.stringMatching(/does not know this service account/),
    });
    expect(
      refusal(
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      ),
    ).toMatchObject({ kind: 'config', hint: expect.stringMatching(/clock/) });
    expect(refusal('invalid_grant', 'something new')).toMatchObject({
      kind: 'config',
      hint: expect.stringMatching(/^Google refused the service account's assertion/),
    });
  });

  it('an outage stays transient', () => {
    expect(refusal('internal_failure', 'Backend Error', 503)).toMatchObject({ kind: 'transient' });
  });
});

describe('the token request', () => {
  interface Scripted {
    readonly url: string;
    /** The form of each request, in arrival order. */
    readonly forms: URLSearchParams[];
    close(): Promise<void>;
  }

  /** A token endpoint answering every request with `status` and `body` (JSON). */
  async function tokenEndpoint(status: number, body: unknown): Promise<Scripted> {
    const forms: URLSearchParams[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        forms.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        response.statusCode = status;
        response.setHeader('content-type', 'application/json; charset=utf-8');
        response.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
      forms,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }

  async function withEndpoint(
    status: number,
    body: unknown,
    use: (endpoint: Scripted) => Promise<void>,
  ): Promise<void> {
    const endpoint = await tokenEndpoint(status, body);
    try {
      await use(endpoint);
    } finally {
      await endpoint.close();
    }
  }

  it("sends grant_type and the assertion and nothing else, to the key's token_uri, and keeps no refresh token", async () => {
    await withEndpoint(
      200,
      {
        access_token: 'ya29.test-token',
        expires_in: 3599,
        token_type: 'Bearer',
        refresh_token: 'never used',
      },
      async (endpoint) => {
        const before = Math.floor(Date.now() / 1000);
        const tokens = await serviceAccountToken(
          account('key', keyJson({ token_uri: endpoint.url })),
          'jane@example.com',
        );
        expect(tokens).toEqual({ accessToken: 'ya29.test-token', expiresAt: expect.any(Number) });
        expect(tokens.expiresAt - before).toBeGreaterThanOrEqual(3598);
        expect(tokens.expiresAt - before).toBeLessThanOrEqual(3600);
        expect(endpoint.forms).toHaveLength(1);
        const form = endpoint.forms[0]!;
        expect([...form.keys()].sort()).toEqual(['assertion', 'grant_type']);
        expect(form.get('grant_type')).toBe(JWT_BEARER_GRANT);
        const claims = JSON.parse(
          Buffer.from(form.get('assertion')!.split('.')[1]!, 'base64url').toString('utf8'),
        ) as Record<string, unknown>;
        expect(claims).toMatchObject({
          iss: CLIENT_EMAIL,
          sub: 'jane@example.com',
          aud: endpoint.url,
          scope: 'https://mail.google.com/',
        });
      },
    );
  });

  it('a decrypted client_secret_encrypted stands in for client_secret', async () => {
    await withEndpoint(
      200,
      { access_token: 'ya29.other', expires_in: 3599, token_type: 'Bearer' },
      async (endpoint) => {
        const tokens = await serviceAccountToken(account('key'), 'jane@example.com', {
          clientSecret: keyJson({ token_uri: endpoint.url }),
        });
        expect(tokens.accessToken).toBe('ya29.other');
      },
    );
  });

  it("Google's 401 for missing delegation is a config problem; an outage is transient; no endpoint at token_uri blames the key", async () => {
    const delegation = {
      error: 'unauthorized_client',
      error_description:
        'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
    };
    await withEndpoint(401, delegation, async (endpoint) => {
      await expect(
        serviceAccountToken(
          account('key', keyJson({ token_uri: endpoint.url })),
          'jane@example.com',
        ),
      ).rejects.toMatchObject({
        kind: 'config',
        code: 'unauthorized_client',
        hint: expect.stringMatching(/^Domain-wide delegation is missing/),
      });
    });
    await withEndpoint(
      503,
      { error: 'internal_failure', error_description: 'Backend Error' },
      async (endpoint) => {
        await expect(
          serviceAccountToken(
            account('key', keyJson({ token_uri: endpoint.url })),
            'jane@example.com',
          ),
        ).rejects.toMatchObject({ kind: 'transient' });
      },
    );
    await withEndpoint(404, 'Not Found', async (endpoint) => {
      await expect(
        serviceAccountToken(
          account('key', keyJson({ token_uri: endpoint.url })),
          'jane@example.com',
        ),
      ).rejects.toMatchObject({
        kind: 'config',
        configKey: 'client_secret',
        hint: `There is no OAuth token endpoint at ${endpoint.url}, the token_uri of the key in client_secret: use the JSON key as Google issued it.`,
      });
    });
  });

  it('an unusable key fails before anything is sent', async () => {
    await withEndpoint(200, {}, async (endpoint) => {
      await expect(
        serviceAccountToken(account('file', join(dir, 'missing.json')), 'jane@example.com'),
      ).rejects.toMatchObject({ kind: 'config', configKey: 'client_secret' });
      expect(endpoint.forms).toHaveLength(0);
    });
  });
});

describe('start-up warnings about service account keys', () => {
  it('an inline key makes the config a file with secrets; a key file others can read is named', async () => {
    const keyFile = join(dir, 'key.json');
    await writeFile(keyFile, keyJson());
    await chmod(keyFile, 0o644);
    const pasted = keyJson()
      .trimEnd()
      .split('\n')
      .map((line, index) => (index === 0 ? line : `  ${line}`))
      .join('\n');
    const text =
      `${IMAP_SERVER}[emailproxy]\nallow_catch_all_accounts = True\n\n` +
      `[@example.com]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = file\nclient_secret = ${keyFile}\n\n` +
      `[@example.org]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = key\nclient_secret = ${pasted}\n`;
    const file = join(dir, 'config.ini');
    await writeFile(file, text);
    await chmod(file, 0o644);
    expect(await startupWarnings(parseConfig(text, file), join(dir, 'tokens.ini'))).toEqual([
      `${file} is readable by other users (mode 644) and it holds service account keys; run: chmod 600 ${file}`,
      `${keyFile} is readable by other users (mode 644) and it holds a service account's private key; run: chmod 600 ${keyFile}`,
    ]);
  });

  it('a path to a key file alone is no secret in the config', async () => {
    const keyFile = join(dir, 'key.json');
    await writeFile(keyFile, keyJson(), { mode: 0o600 });
    const text = `${IMAP_SERVER}[robot@example.com]\noauth2_flow = service_account\noauth2_scope = https://mail.google.com/\nclient_id = file\nclient_secret = ${keyFile}\n`;
    const file = join(dir, 'config.ini');
    await writeFile(file, text);
    await chmod(file, 0o644);
    expect(await startupWarnings(parseConfig(text, file), join(dir, 'tokens.ini'))).toEqual([]);
  });
});

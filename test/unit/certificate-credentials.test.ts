import { execFile } from 'node:child_process';
import { createPublicKey, verify, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountConfig, CertificateCredentialFiles } from '../../src/config/types.js';
import {
  certificateThumbprintSha256,
  CLIENT_ASSERTION_LIFETIME_SECONDS,
  clientCredentials,
  loadCertificateCredentials,
  OAuthError,
  passwordGrant,
  refresh,
} from '../../src/oauth/index.js';
import { json, scriptedProvider } from '../support/scripted-provider.js';

/**
 * Microsoft's certificate credentials (`jwt_certificate_path` / `jwt_key_path`): the files are
 * checked and never quoted, and every token request carries an RS256 assertion with the
 * certificate's SHA-256 thumbprint, addressed to the token endpoint, instead of a secret.
 */
const run = promisify(execFile);
let dir: string;
let files: CertificateCredentialFiles;
let certificatePem: string;
let keyPem: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-cert-creds-'));
  files = { certificatePath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem') };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    files.keyPath,
    '-out',
    files.certificatePath,
    '-days',
    '2',
    '-subj',
    '/CN=unit test app',
  ]);
  certificatePem = await readFile(files.certificatePath, 'utf8');
  keyPem = await readFile(files.keyPath, 'utf8');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function account(tokenUrl: string, overrides: Partial<AccountConfig> = {}): AccountConfig {
  return {
    name: 'scanner@example.com',
    permissionUrl: '',
    tokenUrl,
    scope: 'https://outlook.office365.com/.default',
    redirectUri: '',
    clientId: 'a1b2c3d4-1111-4000-8000-000000000001',
    flow: 'client_credentials',
    usePkce: false,
    certificateCredentials: files,
    ...overrides,
  };
}

const tokenAnswer = json(200, {
  access_token: 'app-only-access-token',
  token_type: 'Bearer',
  expires_in: 3599,
});

function decodePart(part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
  const error: unknown = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(OAuthError);
  return error as OAuthError;
}

describe('the certificate thumbprint', () => {
  it('is the base64url SHA-256 fingerprint openssl reports for the same certificate', async () => {
    const { stdout } = await run('openssl', [
      'x509',
      '-noout',
      '-fingerprint',
      '-sha256',
      '-in',
      files.certificatePath,
    ]);
    const hex = /=([0-9A-F:]+)/.exec(stdout)?.[1]?.replaceAll(':', '');
    expect(hex).toHaveLength(64);
    const expected = Buffer.from(hex ?? '', 'hex').toString('base64url');

    expect(certificateThumbprintSha256(new X509Certificate(certificatePem))).toBe(expected);
    expect((await loadCertificateCredentials(files)).thumbprintSha256).toBe(expected);
  });
});

describe('loading the files', () => {
  it('gives a config error naming the key and the file, never their content', async () => {
    const cases: Array<{ files: CertificateCredentialFiles; configKey: string; message: RegExp }> =
      [];
    const missing = join(dir, 'no-such-key.pem');
    cases.push({
      files: { ...files, keyPath: missing },
      configKey: 'jwt_key_path',
      message: /cannot read jwt_key_path .*no-such-key\.pem: it does not exist/,
    });
    cases.push({
      files: { ...files, certificatePath: join(dir, 'gone.pem') },
      configKey: 'jwt_certificate_path',
      message: /cannot read jwt_certificate_path .*gone\.pem/,
    });

    // The two files swapped: a key is no certificate, a certificate no key.
    cases.push({
      files: { certificatePath: files.keyPath, keyPath: files.keyPath },
      configKey: 'jwt_certificate_path',
      message: /is not a PEM X\.509 certificate/,
    });
    cases.push({
      files: { ...files, keyPath: files.certificatePath },
      configKey: 'jwt_key_path',
      message: /is not a PEM private key/,
    });

    const encrypted = join(dir, 'encrypted.pem');
    await run('openssl', [
      'pkey',
      '-in',
      files.keyPath,
      '-aes256',
      '-passout',
      'pass:pw',
      '-out',
      encrypted,
    ]);
    cases.push({
      files: { ...files, keyPath: encrypted },
      configKey: 'jwt_key_path',
      message: /encrypted\.pem is encrypted/,
    });

    const otherKey = join(dir, 'other.pem');
    await run('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      otherKey,
    ]);
    cases.push({
      files: { ...files, keyPath: otherKey },
      configKey: 'jwt_key_path',
      message: /other\.pem is not the private key of the certificate/,
    });

    const ecKey = join(dir, 'ec.pem');
    await run('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      ecKey,
    ]);
    cases.push({
      files: { ...files, keyPath: ecKey },
      configKey: 'jwt_key_path',
      message: /holds an EC key, not an RSA key/,
    });

    for (const { files: given, configKey, message } of cases) {
      const error = await rejection(loadCertificateCredentials(given));
      expect(error.kind).toBe('config');
      expect(error.configKey).toBe(configKey);
      expect(error.message).toMatch(message);
      const said = `${error.message}\n${error.hint}`;
      expect(said).not.toContain(keyPem.split('\n')[1]);
      expect(said).not.toContain(certificatePem.split('\n')[1]);
    }
  });
});

describe('token requests with certificate credentials', () => {
  it('send an RS256 assertion Microsoft accepts instead of a secret, signed by the certificate key', async () => {
    const provider = await scriptedProvider(tokenAnswer);
    const tokenUrl = `${provider.base}/contoso.onmicrosoft.com/oauth2/v2.0/token`;
    const before = Math.floor(Date.now() / 1000);
    const tokens = await clientCredentials(account(tokenUrl));
    expect(tokens.accessToken).toBe('app-only-access-token');

    const form = provider.forms[0]!;
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('client_id')).toBe(account(tokenUrl).clientId);
    expect(form.has('client_secret')).toBe(false);
    expect(form.get('client_assertion_type')).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );

    const assertion = form.get('client_assertion') ?? '';
    const [headerPart, claimsPart, signaturePart] = assertion.split('.');
    const header = decodePart(headerPart);
    expect(header).toEqual({
      alg: 'RS256',
      typ: 'JWT',
      'x5t#S256': certificateThumbprintSha256(new X509Certificate(certificatePem)),
    });

    const claims = decodePart(claimsPart);
    expect(claims['aud']).toBe(tokenUrl);
    expect(claims['iss']).toBe(account(tokenUrl).clientId);
    expect(claims['sub']).toBe(account(tokenUrl).clientId);
    expect(claims['jti']).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const nbf = claims['nbf'] as number;
    expect(nbf).toBeGreaterThanOrEqual(before - 1);
    expect(nbf).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    expect(claims['exp']).toBe(nbf + CLIENT_ASSERTION_LIFETIME_SECONDS);

    const signed = Buffer.from(`${headerPart}.${claimsPart}`);
    const signature = Buffer.from(signaturePart ?? '', 'base64url');
    expect(verify('sha256', signed, createPublicKey(certificatePem), signature)).toBe(true);
  });

  it('are sent by every grant, each with a new jti', async () => {
    const provider = await scriptedProvider(
      json(200, {
        access_token: 'at',
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: 'rt2',
      }),
    );
    const tokenUrl = `${provider.base}/tenant/oauth2/v2.0/token`;
    await refresh(
      account(tokenUrl, {
        flow: 'authorization_code',
        permissionUrl: `${provider.base}/tenant/oauth2/v2.0/authorize`,
      }),
      'rt1',
    );
    await passwordGrant(account(tokenUrl, { flow: 'password' }), 'user@example.com', 'pw');
    await clientCredentials(account(tokenUrl));

    expect(provider.forms.map((form) => form.get('grant_type'))).toEqual([
      'refresh_token',
      'password',
      'client_credentials',
    ]);
    const jtis = provider.forms.map(
      (form) => decodePart(form.get('client_assertion')?.split('.')[1])['jti'],
    );
    expect(new Set(jtis).size).toBe(3);
    for (const form of provider.forms) expect(form.has('client_secret')).toBe(false);
  });

  it('give way to a client secret, from the section or from the caller', async () => {
    const provider = await scriptedProvider(tokenAnswer);
    const tokenUrl = `${provider.base}/tenant/oauth2/v2.0/token`;
    await clientCredentials(account(tokenUrl, { clientSecret: 'section secret' }));
    await clientCredentials(account(tokenUrl), { clientSecret: 'decrypted secret' });

    expect(provider.forms.map((form) => form.get('client_secret'))).toEqual([
      'section secret',
      'decrypted secret',
    ]);
    for (const form of provider.forms) expect(form.has('client_assertion')).toBe(false);
  });

  it('fail as a config problem naming the file, before anything is sent, when a file is missing', async () => {
    const provider = await scriptedProvider(tokenAnswer);
    const keyPath = join(dir, 'deleted-key.pem');
    const error = await rejection(
      clientCredentials(
        account(`${provider.base}/t/token`, { certificateCredentials: { ...files, keyPath } }),
      ),
    );
    expect(error.kind).toBe('config');
    expect(error.configKey).toBe('jwt_key_path');
    expect(error.message).toContain(keyPath);
    expect(provider.forms).toEqual([]);
  });

  it('read the files at each request, so a replaced certificate applies without a restart', async () => {
    const provider = await scriptedProvider(tokenAnswer);
    const renewed = {
      certificatePath: join(dir, 'renewed-cert.pem'),
      keyPath: join(dir, 'renewed-key.pem'),
    };
    await writeFile(renewed.certificatePath, certificatePem);
    await writeFile(renewed.keyPath, keyPem, { mode: 0o600 });
    const tokenUrl = `${provider.base}/t/token`;
    await clientCredentials(account(tokenUrl, { certificateCredentials: renewed }));

    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      renewed.keyPath,
      '-out',
      renewed.certificatePath,
      '-days',
      '2',
      '-subj',
      '/CN=renewed',
    ]);
    await clientCredentials(account(tokenUrl, { certificateCredentials: renewed }));

    const thumbprints = provider.forms.map(
      (form) => decodePart(form.get('client_assertion')?.split('.')[0])['x5t#S256'],
    );
    expect(thumbprints[0]).toBe(certificateThumbprintSha256(new X509Certificate(certificatePem)));
    expect(thumbprints[1]).toBe(
      certificateThumbprintSha256(new X509Certificate(await readFile(renewed.certificatePath))),
    );
    expect(thumbprints[1]).not.toBe(thumbprints[0]);
  });
});

/**
 * A confidential client that authenticates with certificate credentials, like a Microsoft app
 * registration with an uploaded certificate: oidc-provider knows the certificate's public key
 * (`jwks`) and accepts only `private_key_jwt` assertions signed with its private key. The
 * certificate and key are made fresh for each identity provider, with the `openssl` tool.
 */
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What a proxy account needs to use the certificate client. */
export interface CertificateClient {
  readonly clientId: string;
  /** The PEM certificate (what `jwt_certificate_path` names). */
  readonly certFile: string;
  /** Its unencrypted PEM private key, mode 600 (what `jwt_key_path` names). */
  readonly keyFile: string;
}

/** The client as the identity provider registers it, and the files to remove when it stops. */
export interface CertificateClientSetup {
  readonly client: CertificateClient;
  /** The certificate's public key as a JWK, for the client's registered `jwks`. */
  readonly publicJwk: object;
  remove(): Promise<void>;
}

export const CERTIFICATE_CLIENT_ID = 'd1b2c3d4-0000-4000-8000-0000000ce271';

/** Makes a self-signed RSA certificate and key in a new temp dir (tens of milliseconds). */
export async function createCertificateClient(): Promise<CertificateClientSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'omp-idp-cert-'));
  const certFile = join(dir, 'app-certificate.pem');
  const keyFile = join(dir, 'app-key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=oauth2-mail-proxy test app certificate',
  ]);
  const publicKey = createPublicKey(await readFile(certFile));
  return {
    client: { clientId: CERTIFICATE_CLIENT_ID, certFile, keyFile },
    publicJwk: { ...publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

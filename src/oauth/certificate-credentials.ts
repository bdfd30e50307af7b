/**
 * Microsoft's "certificate credentials" (learn.microsoft.com/entra/identity-platform/certificate-credentials),
 * as email-oauth2-proxy's `jwt_certificate_path` / `jwt_key_path` configure them: instead of a
 * client secret, every token request carries a short-lived JWT signed with the private key of a
 * certificate uploaded to the app registration (OpenID Connect's `private_key_jwt`).
 *
 * The files are read at each token request, so a renewed certificate takes effect without a
 * restart; requests are rare (one an hour per account at most), the files small.
 */
import { createHash, createPrivateKey, randomUUID, webcrypto, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as client from 'openid-client';
import type { CertificateCredentialFiles } from '../config/types.js';
import { OAuthError, type OAuthConfigKey } from './errors.js';

/** How long a client assertion is valid: long enough for clock skew, short enough to be useless if seen. */
export const CLIENT_ASSERTION_LIFETIME_SECONDS = 300;

/** The certificate's thumbprint and the key that signs, ready for {@link certificateCredentialsAuth}. */
export interface CertificateCredentials {
  /** base64url SHA-256 of the certificate's DER: the assertion's `x5t#S256` header. */
  readonly thumbprintSha256: string;
  /** The private key, usable only to sign with RS256 (not extractable). */
  readonly key: webcrypto.CryptoKey;
  /** When the certificate expires; the provider refuses assertions of an expired certificate. */
  readonly notAfter: Date;
}

/** base64url SHA-256 of an X.509 certificate's DER encoding (JOSE's `x5t#S256`). */
export function certificateThumbprintSha256(certificate: X509Certificate): string {
  return createHash('sha256').update(certificate.raw).digest('base64url');
}

/**
 * Reads and checks both files: a PEM certificate, and its RSA private key unencrypted (PKCS#8 or
 * PKCS#1), which must belong to the certificate.
 *
 * @throws OAuthError of kind `config` naming the key and the file; never any of the file's content
 */
export async function loadCertificateCredentials(
  files: CertificateCredentialFiles,
): Promise<CertificateCredentials> {
  const certificate = parseCertificate(
    await readPem(files.certificatePath, 'jwt_certificate_path'),
    files.certificatePath,
  );
  const privateKey = parsePrivateKey(await readPem(files.keyPath, 'jwt_key_path'), files.keyPath);
  if (!certificate.checkPrivateKey(privateKey)) {
    throw fileError(
      'jwt_key_path',
      `jwt_key_path ${files.keyPath} is not the private key of the certificate in jwt_certificate_path ${files.certificatePath}`,
      'Set jwt_key_path to the key the certificate was made with (the certificate alone is what the app registration holds).',
    );
  }
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    privateKey.export({ format: 'der', type: 'pkcs8' }),
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return {
    thumbprintSha256: certificateThumbprintSha256(certificate),
    key,
    notAfter: new Date(certificate.validTo),
  };
}

/**
 * openid-client's `private_key_jwt` with the assertion Microsoft documents: RS256, header
 * `typ: JWT` and `x5t#S256` (the certificate thumbprint, by which Microsoft finds the certificate:
 * there is no `kid`), claims `aud` = the token endpoint, `iss` = `sub` = client_id, a UUID `jti`,
 * `nbf`/`iat` now and `exp` {@link CLIENT_ASSERTION_LIFETIME_SECONDS} later. The files are loaded
 * at each request; a problem with them fails the request with a `config` OAuthError.
 *
 * @param audience - the token endpoint as configured (`token_url`): openid-client would otherwise
 *   use the issuer, which we only know as the token endpoint's origin
 */
export function certificateCredentialsAuth(
  files: CertificateCredentialFiles,
  audience: string,
): client.ClientAuth {
  return async (as, metadata, body, headers) => {
    const credentials = await loadCertificateCredentials(files);
    const sign = client.PrivateKeyJwt(credentials.key, {
      [client.modifyAssertion]: (header, claims) => {
        header['typ'] = 'JWT';
        header['x5t#S256'] = credentials.thumbprintSha256;
        claims['aud'] = audience;
        claims['jti'] = randomUUID();
        const now =
          typeof claims['nbf'] === 'number' ? claims['nbf'] : Math.floor(Date.now() / 1000);
        claims['exp'] = now + CLIENT_ASSERTION_LIFETIME_SECONDS;
      },
    });
    // openid-client's ClientAuth type says void, but its private_key_jwt signs asynchronously.
    await (sign(as, metadata, body, headers) as void | Promise<void>);
  };
}

async function readPem(path: string, configKey: OAuthConfigKey): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const why =
      code === 'ENOENT'
        ? 'it does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : `${code ?? 'read error'}`;
    throw fileError(
      configKey,
      `cannot read ${configKey} ${path}: ${why}`,
      `Check ${configKey} in the account section (relative paths are relative to the configuration file) and that the user running the proxy may read the file.`,
    );
  }
}

function parseCertificate(pem: Buffer, path: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw fileError(
      'jwt_certificate_path',
      `jwt_certificate_path ${path} is not a PEM X.509 certificate`,
      'Set jwt_certificate_path to the certificate (-----BEGIN CERTIFICATE-----) uploaded to the app registration.',
    );
  }
}

function parsePrivateKey(pem: Buffer, path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    // Node 20 reports a missing passphrase as an OpenSSL "interrupted or cancelled"; the PEM says it plainly.
    const encrypted =
      (error as { code?: unknown } | undefined)?.code === 'ERR_MISSING_PASSPHRASE' ||
      /-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(pem.toString('latin1'));
    throw fileError(
      'jwt_key_path',
      encrypted
        ? `jwt_key_path ${path} is encrypted`
        : `jwt_key_path ${path} is not a PEM private key`,
      encrypted
        ? `The key must be unencrypted (keep the file mode 600 instead): openssl pkey -in ${path} -out key-unencrypted.pem`
        : 'Set jwt_key_path to the PEM private key (-----BEGIN PRIVATE KEY-----) of the certificate in jwt_certificate_path.',
    );
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw fileError(
      'jwt_key_path',
      `jwt_key_path ${path} holds an ${(key.asymmetricKeyType ?? 'unknown').toUpperCase()} key, not an RSA key`,
      'Microsoft signs certificate credentials with RS256: make the certificate with an RSA key (openssl req -x509 -newkey rsa:2048 ...).',
    );
  }
  return key;
}

function fileError(configKey: OAuthConfigKey, message: string, hint: string): OAuthError {
  return new OAuthError(message, {
    kind: 'config',
    code: 'invalid_certificate_credentials',
    hint,
    configKey,
  });
}

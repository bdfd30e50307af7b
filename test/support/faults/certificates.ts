/**
 * Certificates an upstream should never get past the proxy with: one signed by the trusted CA but
 * for another host, and one for the right host that nobody signed.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTestCa, type TestCa } from '../../peers/certs.js';

const run = promisify(execFile);

/** A key and certificate, PEM text, ready for `tls.createServer`. */
export interface KeyAndCertificate {
  readonly key: string;
  readonly cert: string;
}

/** The certificates of the hostile TLS servers, and the CA the proxy trusts through `server_ca_file`. */
export interface FaultCertificates {
  /** The CA file the proxy's sections name in `server_ca_file`. */
  readonly caFile: string;
  /** `localhost` / `127.0.0.1`, signed by the CA: what an honest server presents. */
  readonly good: KeyAndCertificate;
  /** Signed by the CA, for `mail.example.org` only: the right CA, the wrong host. */
  readonly wrongHost: KeyAndCertificate;
  /** `localhost` / `127.0.0.1`, signed by itself: the right host, no trusted CA. */
  readonly selfSigned: KeyAndCertificate;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Makes every certificate in `dir` (which must exist) with the `openssl` command line tool. */
export async function makeFaultCertificates(dir: string): Promise<FaultCertificates> {
  const ca: TestCa = await makeTestCa(dir);
  const [wrongHost, selfSigned, good] = await Promise.all([
    signedByCa(dir, ca, 'wrong-host', 'mail.example.org', 'DNS:mail.example.org'),
    selfSignedFor(dir, 'self-signed', 'localhost', 'DNS:localhost, IP:127.0.0.1'),
    readPair(ca.keyFile, ca.certFile),
  ]);
  return { caFile: ca.caFile, good, wrongHost, selfSigned };
}

async function signedByCa(
  dir: string,
  ca: TestCa,
  name: string,
  commonName: string,
  altNames: string,
): Promise<KeyAndCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const certFile = join(dir, `${name}.pem`);
  await writeFile(
    extFile,
    `basicConstraints = critical, CA:FALSE\nextendedKeyUsage = serverAuth\nsubjectAltName = ${altNames}\n`,
  );
  await run('openssl', [
    'req',
    '-new',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    csrFile,
    '-subj',
    `/CN=${commonName}`,
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    ca.caFile,
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    `0x${Date.now().toString(16)}1`,
    '-days',
    '30',
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return readPair(keyFile, certFile);
}

async function selfSignedFor(
  dir: string,
  name: string,
  commonName: string,
  altNames: string,
): Promise<KeyAndCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  await run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '30',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    `subjectAltName=${altNames}`,
  ]);
  return readPair(keyFile, certFile);
}

async function readPair(keyFile: string, certFile: string): Promise<KeyAndCertificate> {
  const [key, cert] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
  return { key, cert };
}

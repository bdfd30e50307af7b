/**
 * A throwaway certificate authority for test peers. Upstream TLS in the proxy is always verified,
 * so tests trust this CA through the proxy's CA option instead of switching verification off.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of the PEM files {@link makeTestCa} wrote. */
export interface TestCa {
  /** The CA certificate: what a client must trust. */
  readonly caFile: string;
  /** Server certificate for `DNS:localhost, IP:127.0.0.1`, signed by the CA. */
  readonly certFile: string;
  /** Unencrypted private key of the server certificate. */
  readonly keyFile: string;
}

// EC P-256 keys take milliseconds to make, RSA-2048 up to a second on a busy machine.
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

const SERVER_EXTENSIONS = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
  'subjectAltName = DNS:localhost, IP:127.0.0.1',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
].join('\n');

/**
 * Makes a fresh CA and a server certificate for `localhost` / `127.0.0.1` signed by it, valid for
 * 30 days, in `dir` (which must exist). Uses the `openssl` command line tool.
 */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const caFile = join(dir, 'ca.pem');
  const caKeyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  const csrFile = join(dir, 'server.csr');
  const extFile = join(dir, 'server.ext');

  const makeCa = run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    caKeyFile,
    '-out',
    caFile,
    '-days',
    '30',
    '-subj',
    '/CN=oauth2-mail-proxy test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const makeRequest = run('openssl', [
    'req',
    '-new',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    csrFile,
    '-subj',
    '/CN=localhost',
  ]);
  await Promise.all([makeCa, makeRequest, writeFile(extFile, `${SERVER_EXTENSIONS}\n`)]);

  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csrFile,
    '-CA',
    caFile,
    '-CAkey',
    caKeyFile,
    '-set_serial',
    `0x${Date.now().toString(16)}`,
    '-days',
    '30',
    '-extfile',
    extFile,
    '-out',
    certFile,
  ]);
  return { caFile, certFile, keyFile };
}

/**
 * What a PostgreSQL failure means for the proxy: "down, try again later" or "fix this setting".
 */

import { TokenStoreError } from './file-store.js';
import { TokenStoreSetupError, TokenStoreUnavailableError } from './store-errors.js';

/** SQLSTATE classes and codes that mean the server is away, not that the request was wrong. */
const UNAVAILABLE_SQLSTATES = /^(08|53|57P0[1-4])/;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOENT', // the unix socket is gone while the server is down
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether the error says the database cannot be reached (rather than refusing the request). */
export function isUnavailable(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined) return NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.test(code);
  // node-postgres reports a dropped connection and a connect timeout without a code.
  return /connection|terminated|timeout/i.test(messageOf(error));
}

/** The store error a failed call rejects with. */
export function storeError(location: string, error: unknown): TokenStoreError {
  if (error instanceof TokenStoreError) return error;
  if (isUnavailable(error)) {
    return new TokenStoreUnavailableError(
      location,
      `PostgreSQL is unreachable (${messageOf(error)}); retrying with backoff`,
      error,
    );
  }
  return new TokenStoreError(
    location,
    `PostgreSQL refused the request (${messageOf(error)})`,
    error,
  );
}

/** The start-up error for `--cache-store` / `cache_store`, naming what to fix. */
export function setupError(location: string, error: unknown): TokenStoreSetupError {
  const code = codeOf(error) ?? '';
  const message = messageOf(error);
  const where = `--cache-store (or cache_store) ${location}`;
  let advice: string;
  if (code === '28P01' || code === '28000')
    advice =
      'PostgreSQL refused the login; check the user in the URL and its password in ~/.pgpass or PGPASSWORD, and pg_hba.conf';
  else if (code === '3D000') advice = 'the database named in the URL does not exist; create it';
  else if (code === '42501' || code === '42P01')
    advice =
      "the role lacks rights in the database's schema; grant it CREATE and USAGE on the schema (docs/scale-out.md)";
  else if (/ssl|tls|certificate|self[- ]signed/i.test(`${code} ${message}`))
    advice =
      'the TLS connection was refused; check sslmode, sslrootcert and the host name in the URL';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    advice = 'the host in the URL (or PGHOST) is unknown';
  else if (isUnavailable(error))
    advice = 'PostgreSQL cannot be reached; check the host and port in the URL (or PGHOST, PGPORT)';
  else if (error instanceof TypeError || /invalid url/i.test(message))
    advice = 'the URL is not a valid postgresql:// connection string';
  else advice = 'PostgreSQL cannot be used';
  return new TokenStoreSetupError(`${where}: ${advice} (${message})`, { cause: error });
}

/**
 * A Google service account's JSON key, found the way email-oauth2-proxy finds it for
 * `oauth2_flow = service_account`: `client_id` says what kind of value `client_secret` holds,
 * `file` (the path of the key file) or `key` (the JSON itself, often spread over continuation
 * lines). Problems are `config` errors naming the key to fix; no message ever repeats the JSON or
 * the private key.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { AccountConfig } from '../config/types.js';
import { OAuthError, type ConfigKey } from './errors.js';
import { isAllowedEndpoint } from './provider-client.js';

/** Google's token endpoint, for keys that do not name one (every key Google issues does). */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/** What `client_id` says `client_secret` holds. */
export type ServiceAccountKeyType = 'file' | 'key';

/** The parts of a service account key the JWT bearer grant uses. */
export interface ServiceAccountKey {
  /** `client_email`: the assertion's issuer. */
  readonly clientEmail: string;
  readonly privateKey: KeyObject;
  /** `private_key_id`: the assertion header's `kid`, so Google knows which of the account's keys signed. */
  readonly privateKeyId?: string;
  /** `client_id`: the numeric ID an administrator grants domain-wide delegation to. Not secret. */
  readonly clientId?: string;
  /** `token_uri`, else Google's. Already checked: https, or http to a loopback host. */
  readonly tokenUri: URL;
  /** Where the key came from, for messages: `the key file /etc/...json` or `the key in client_secret`. */
  readonly source: string;
}

/** Key files are about 2 KB; anything this big is some other file named by mistake. */
const MAX_KEY_FILE_BYTES = 256 * 1024;

const NEW_KEY =
  'In the Google Cloud console (IAM & Admin > Service accounts > the account > Keys > Add key > JSON) create a key';

/**
 * What `client_id` means for a service account (`file` or `key`, as in email-oauth2-proxy; case
 * does not matter).
 *
 * @throws OAuthError (`config`, `client_id`) for anything else
 */
export function serviceAccountKeyType(account: AccountConfig): ServiceAccountKeyType {
  const value = account.clientId.trim().toLowerCase();
  if (value === 'file' || value === 'key') return value;
  throw keyError(
    'client_id',
    'with oauth2_flow = service_account, client_id must be set to `file` or `key`',
    "Set client_id = file and client_secret to the path of the service account's JSON key file, or client_id = key and client_secret to the JSON key itself.",
  );
}

/**
 * Reads and checks the account's key. `keyOrPath` is the value of `client_secret` (the loader has
 * made a written path absolute, against the config file's folder), or a decrypted
 * `client_secret_encrypted` when the account has one, whose relative path is taken from the
 * working directory, as email-oauth2-proxy does.
 *
 * @throws OAuthError (`config`) naming `client_id` or `client_secret`: no usable key
 */
export async function readServiceAccountKey(
  account: AccountConfig,
  keyOrPath: string | undefined = account.clientSecret,
): Promise<ServiceAccountKey> {
  const type = serviceAccountKeyType(account);
  if (!keyOrPath?.trim()) {
    throw keyError(
      'client_secret',
      "with oauth2_flow = service_account, client_secret must hold the service account's key",
      type === 'file'
        ? 'Set client_secret to the path of the JSON key file.'
        : 'Set client_secret to the JSON key itself.',
    );
  }
  if (type === 'key') return parseServiceAccountKey(keyOrPath, 'the key in client_secret');
  const path = keyOrPath.trim();
  return parseServiceAccountKey(await readKeyFile(path), `the key file ${describePath(path)}`);
}

/**
 * Checks a key's JSON text. `source` names it in messages (`the key file ...`).
 *
 * @throws OAuthError (`config`, `client_secret`)
 */
export function parseServiceAccountKey(json: string, source: string): ServiceAccountKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // JSON.parse's message quotes the text around the fault, which may be the private key.
    throw keyError(
      'client_secret',
      `${source} is not valid JSON`,
      'Use the JSON key exactly as Google issued it; written in the config file, every line after the first must be indented.',
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw keyError(
      'client_secret',
      `${source} is not a service account key (not a JSON object)`,
      `${NEW_KEY}.`,
    );
  }
  const fields = parsed as Record<string, unknown>;
  if (fields['installed'] !== undefined || fields['web'] !== undefined) {
    throw keyError(
      'client_secret',
      `${source} is an OAuth client's JSON, not a service account key`,
      `${NEW_KEY} for a service account; an OAuth client's ID and secret belong to oauth2_flow = authorization_code.`,
    );
  }
  if (fields['type'] !== undefined && fields['type'] !== 'service_account') {
    const type =
      typeof fields['type'] === 'string' ? `"${fields['type'].slice(0, 40)}"` : 'an unknown type';
    throw keyError(
      'client_secret',
      `${source} is a key of type ${type}, not "service_account"`,
      `${NEW_KEY} for a service account.`,
    );
  }
  const clientEmail = requiredString(fields, 'client_email', source);
  const privateKey = rsaKey(requiredString(fields, 'private_key', source), source);
  const privateKeyId = optionalString(fields, 'private_key_id', source);
  const clientId = optionalString(fields, 'client_id', source);
  return {
    clientEmail,
    privateKey,
    ...(privateKeyId !== undefined && { privateKeyId }),
    ...(clientId !== undefined && { clientId }),
    tokenUri: tokenUri(optionalString(fields, 'token_uri', source) ?? GOOGLE_TOKEN_URI, source),
    source,
  };
}

async function readKeyFile(path: string): Promise<string> {
  const where = `client_secret names the service account key file ${describePath(path)}`;
  const putItThere =
    "Put the service account's JSON key there, readable only by the user the proxy runs as (chmod 600), or set client_secret to where it is (an absolute path).";
  try {
    const info = await stat(path);
    if (info.isDirectory())
      throw keyError('client_secret', `${where}, which is a directory`, putItThere);
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw keyError(
        'client_secret',
        `${where}, which is too large to be one (${info.size} bytes)`,
        'Check the path: a key file is about 2 KB of JSON.',
      );
    }
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw keyError('client_secret', `${where}, which does not exist`, putItThere);
    if (code === 'EACCES' || code === 'EPERM') {
      throw keyError(
        'client_secret',
        `${where}, which this user may not read`,
        'Make the file readable by the user the proxy runs as (and by nobody else: chmod 600).',
      );
    }
    throw keyError(
      'client_secret',
      `${where}, which cannot be read (${code ?? 'unknown error'})`,
      putItThere,
    );
  }
}

/** A relative path with the absolute one it means, since the proxy's working directory is easy to forget. */
function describePath(path: string): string {
  return isAbsolute(path) ? path : `${path} (relative to the working directory: ${resolve(path)})`;
}

function requiredString(fields: Record<string, unknown>, name: string, source: string): string {
  const value = optionalString(fields, name, source);
  if (value === undefined) {
    throw keyError(
      'client_secret',
      `${source} has no ${name}`,
      `Use the complete JSON key as Google issued it, or ${NEW_KEY.charAt(0).toLowerCase()}${NEW_KEY.slice(1)}.`,
    );
  }
  return value;
}

function optionalString(
  fields: Record<string, unknown>,
  name: string,
  source: string,
): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') {
    throw keyError(
      'client_secret',
      `${source} has a ${name} that is not a string`,
      'Use the JSON key exactly as Google issued it.',
    );
  }
  return value;
}

function rsaKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // The crypto error says nothing useful and must not be given a chance to quote the key.
    throw keyError(
      'client_secret',
      `${source} has a private_key that is not a readable PEM private key`,
      'Use the JSON key exactly as Google issued it: private_key keeps its "\\n" line breaks and its BEGIN/END lines.',
    );
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw keyError(
      'client_secret',
      `${source} has a private_key of type ${key.asymmetricKeyType ?? 'unknown'}, not RSA`,
      `Google signs service account assertions with RSA (RS256): ${NEW_KEY.charAt(0).toLowerCase()}${NEW_KEY.slice(1)}.`,
    );
  }
  return key;
}

function tokenUri(value: string, source: string): URL {
  const url = URL.parse(value);
  if (url === null || !isAllowedEndpoint(url)) {
    throw keyError(
      'client_secret',
      `${source} has a token_uri that is not an https:// address`,
      `Use the JSON key as Google issued it (token_uri ${GOOGLE_TOKEN_URI}); plain http is only allowed for loopback hosts.`,
    );
  }
  return url;
}

function keyError(configKey: ConfigKey, message: string, hint: string): OAuthError {
  return new OAuthError(message, {
    kind: 'config',
    code: 'invalid_service_account_key',
    hint,
    configKey,
  });
}

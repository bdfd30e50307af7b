/**
 * The SASL pieces every protocol shares: decoding what password clients send (PLAIN, LOGIN)
 * and encoding what the upstream expects (XOAUTH2).
 */

export interface PlainCredentials {
  readonly username: string;
  readonly password: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 decode: `undefined` for anything a careful client would not send. */
export function decodeBase64(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (trimmed.length % 4 !== 0 || !BASE64.test(trimmed)) return undefined;
  return Buffer.from(trimmed, 'base64');
}

/**
 * SASL PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`. The authorisation identity is
 * accepted only when empty or equal to the login name; acting as someone else is not ours to grant.
 */
export function decodePlain(base64: string): PlainCredentials | undefined {
  const bytes = decodeBase64(base64);
  if (!bytes) return undefined;
  const parts = bytes.toString('utf8').split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid, username, password] = parts as [string, string, string];
  if (username === '' || password === '') return undefined;
  if (authzid !== '' && authzid !== username) return undefined;
  return { username, password };
}

/** The XOAUTH2 initial client response (Google's and Microsoft's documented format), base64. */
export function encodeXoauth2(user: string, accessToken: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString(
    'base64',
  );
}

/**
 * What an XOAUTH2 error challenge (`+ <b64>` / `334 <b64>`) says, e.g.
 * `{"status":"401","schemes":"bearer","scope":"..."}`. Never throws: servers send odd things.
 */
export function describeXoauth2Challenge(base64: string): string {
  const bytes = decodeBase64(base64);
  if (!bytes) return 'the server rejected the token';
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { status?: unknown };
    if (typeof parsed.status === 'string' || typeof parsed.status === 'number') {
      return `the server rejected the token (status ${String(parsed.status)})`;
    }
  } catch {
    // not JSON: fall through to the generic text
  }
  return 'the server rejected the token';
}

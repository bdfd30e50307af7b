import type { LoginFailure } from '../../auth/types.js';

/**
 * RFC 2449: the first line of a reply is at most 512 octets with its CRLF. Python's poplib gives
 * up on lines over 2048, so long texts (a failure message, a server's reply) are cut, not sent.
 */
const MAX_STATUS_LINE_BYTES = 512 - 2;

/** A positive status line, `+OK text`. */
export function okReply(text = ''): string {
  return statusLine('+OK', text);
}

/** A negative status line, `-ERR text`; RFC 2449 response codes go at the start of `text`. */
export function errReply(text: string): string {
  return statusLine('-ERR', text);
}

/**
 * What `CAPA` announces before login (RFC 2449): only what this session itself honours.
 *
 * - `USER` and `SASL PLAIN`: the two ways we take a password (RFC 1939, RFC 5034).
 * - `RESP-CODES`, `AUTH-RESP-CODE`: our refusals carry `[AUTH]` / `[SYS/TEMP]` (RFC 2449, 3206), which is
 *   how fetchmail and others tell "wrong password, stop" from "try again later".
 * - `STLS` only while a local certificate is configured and the connection is not yet encrypted.
 * - No `PIPELINING`, although the pre-login reader does handle pipelined commands: RFC 2449 makes a
 *   capability announced before login a promise for after it too, and after login the client talks
 *   to the real server, whose support we cannot vouch for. A client wrongly believing it may
 *   pipeline can lose commands; a client that does not pipeline loses one round trip per command.
 *   The same reasoning keeps out `TOP`, `UIDL`, `EXPIRE` and friends: after login the client sends
 *   `CAPA` again and hears them from the server itself.
 */
export function capabilityList(canStartTls: boolean): string {
  const capabilities = ['USER', 'SASL PLAIN', 'RESP-CODES', 'AUTH-RESP-CODE', ...(canStartTls ? ['STLS'] : [])];
  return multiLine(okReply('Capability list follows'), capabilities);
}

/** The answer to a bare `AUTH`, which many clients send to list the SASL mechanisms. */
export function mechanismList(): string {
  return multiLine(okReply(), ['PLAIN']);
}

/**
 * The `-ERR` for a login the authenticator refused: `[SYS/TEMP]` makes clients retry later
 * (identity provider down, authorisation pending), `[AUTH]` says the credentials are wrong.
 */
export function loginRefusal(failure: LoginFailure): string {
  return errReply(`[${failure.temporary ? 'SYS/TEMP' : 'AUTH'}] ${failure.message}`);
}

function multiLine(first: string, lines: readonly string[]): string {
  return `${first}${lines.map((line) => `${line}\r\n`).join('')}.\r\n`;
}

function statusLine(status: '+OK' | '-ERR', text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ').trim();
  const line = flat === '' ? status : `${status} ${flat}`;
  return `${truncateUtf8(line, MAX_STATUS_LINE_BYTES)}\r\n`;
}

/** Cuts at a byte length without splitting a UTF-8 sequence. */
function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that did not fit.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

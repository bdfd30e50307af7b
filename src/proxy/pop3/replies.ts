import type { LoginFailure, UpstreamCredentials } from '../../auth/types.js';
import { oneLine, tokenRejectedText } from '../reply-text.js';
import type { Pop3UpstreamVerdict } from './upstream-login.js';

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
  const capabilities = [
    'USER',
    'SASL PLAIN',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    ...(canStartTls ? ['STLS'] : []),
  ];
  return multiLine(okReply('Capability list follows'), capabilities);
}

/** The answer to a bare `AUTH`, which many clients send to list the SASL mechanisms. */
export function mechanismList(): string {
  return multiLine(okReply(), ['PLAIN']);
}

/**
 * The `-ERR` for a login the authenticator refused: `[SYS/TEMP]` makes clients retry later
 * (identity provider down, authorisation pending), `[AUTH]` says the credentials are wrong.
 *
 * fetchmail 6.4 ignores RFC 3206 codes and reads the text: "service" with "unavailable" means
 * "server busy, retry" (exit 14), while anything else counts as an authentication failure that
 * stops a fetchmail daemon until someone wakes it. So temporary refusals start with those words.
 */
export function loginRefusal(failure: LoginFailure): string {
  return errReply(
    failure.temporary
      ? `[SYS/TEMP] ${TEMPORARY_PREFIX}${failure.message}`
      : `[AUTH] ${failure.message}`,
  );
}

/** See {@link loginRefusal}: the words fetchmail needs to see a temporary failure. */
export const TEMPORARY_PREFIX = 'Service temporarily unavailable: ';

/**
 * The `-ERR` when the upstream did not take our XOAUTH2 login. A rejected token gets `[AUTH]` and
 * the command that replaces it; any other refusal is the server's own words with its response
 * code, so the client sees `[IN-USE]` or `[SYS/TEMP]` and acts on it.
 */
export function upstreamRefusal(
  verdict: Exclude<Pop3UpstreamVerdict, { kind: 'accepted' }>,
  target: string,
  credentials: UpstreamCredentials,
): string {
  if (verdict.kind === 'refused') return errReply(verdict.reason);
  return errReply(`[AUTH] ${tokenRejectedText(target, credentials, verdict.reason)}`);
}

function multiLine(first: string, lines: readonly string[]): string {
  return `${first}${lines.map((line) => `${line}\r\n`).join('')}.\r\n`;
}

function statusLine(status: '+OK' | '-ERR', text: string): string {
  return `${oneLine(`${status} ${text.trim()}`, MAX_STATUS_LINE_BYTES)}\r\n`;
}

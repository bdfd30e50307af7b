import type { LoginFailure, UpstreamCredentials } from '../../auth/types.js';
import { oneLine, tokenRejectedText } from '../reply-text.js';
import type { ImapUpstreamVerdict } from './upstream-login.js';

/**
 * Capabilities we offer before login: what a password client needs, nothing we cannot honour.
 * `LOGINDISABLED` (RFC 3501) tells a client on an unencrypted network connection to STARTTLS first.
 */
export function preAuthCapabilities(canStartTls: boolean, loginDisabled = false): string {
  return [
    'IMAP4rev1',
    'SASL-IR',
    'LITERAL+',
    'ID',
    'AUTH=PLAIN',
    ...(canStartTls ? ['STARTTLS'] : []),
    ...(loginDisabled ? ['LOGINDISABLED'] : []),
  ].join(' ');
}

/** An untagged `BYE`, the last thing a client hears from us. */
export function bye(text: string): string {
  return `* BYE ${oneLine(text)}\r\n`;
}

/**
 * The tagged `NO` for a refused login. RFC 5530 response codes let clients tell "wrong
 * credentials" (do not retry) from "try again later".
 */
export function loginRefusal(tag: string, failure: LoginFailure): string {
  const code =
    failure.reason === 'encryption-required'
      ? 'PRIVACYREQUIRED'
      : failure.temporary
        ? 'UNAVAILABLE'
        : 'AUTHENTICATIONFAILED';
  return `${tag} NO [${code}] ${oneLine(failure.message)}\r\n`;
}

/**
 * The tagged `NO` when the upstream did not take our XOAUTH2 login. A rejected token gets the
 * command that replaces it; any other refusal is the server's own words, response code first,
 * so the client sees `[UNAVAILABLE]` or `[INUSE]` and acts on it.
 */
export function upstreamRefusal(
  tag: string,
  verdict: Exclude<ImapUpstreamVerdict, { kind: 'accepted' }>,
  target: string,
  credentials: UpstreamCredentials,
): string {
  if (verdict.kind === 'refused') return `${tag} NO ${oneLine(verdict.reason)}\r\n`;
  return `${tag} NO [AUTHENTICATIONFAILED] ${oneLine(tokenRejectedText(target, credentials, verdict.reason))}\r\n`;
}

import type { LoginFailure, UpstreamCredentials } from '../../auth/types.js';
import { oneLine, tokenRejectedText } from '../reply-text.js';
import type { UpstreamError } from '../upstream.js';
import type { SmtpUpstreamLogin } from './upstream-login.js';

/**
 * The replies the proxy itself phrases. Codes follow RFC 5321 / 4954 and enhanced codes RFC 3463 /
 * 5248, chosen so that queues (msmtp, Postfix relays, mutt) retry `4xx` and bounce only on `5xx`.
 */

/** A refused local login: `454` lets the client retry later, `535` says the credentials are wrong. */
export function loginRefusal(failure: LoginFailure): string {
  if (failure.reason === 'encryption-required') return `538 5.7.11 ${oneLine(failure.message)}\r\n`;
  return failure.temporary
    ? `454 4.7.0 ${oneLine(failure.message)}\r\n`
    : `535 5.7.8 ${oneLine(failure.message)}\r\n`;
}

/** What the client hears when the upstream did not take our XOAUTH2 login. */
export function upstreamLoginRefusal(
  result: Exclude<SmtpUpstreamLogin, { kind: 'accepted' }>,
  server: string,
  credentials: UpstreamCredentials,
): string {
  if (result.kind === 'token-rejected')
    return `535 5.7.8 ${oneLine(tokenRejectedText(server, credentials, result.reason))}\r\n`;
  const refused = `${server} refused the OAuth2 login for ${credentials.user}`;
  switch (result.cause) {
    case 'smtp-auth-disabled':
      return `535 5.7.139 ${oneLine(
        `${refused} because SMTP AUTH is disabled for this mailbox or its organisation (${result.reason}). ` +
          'Re-authorising will not help: the tenant administrator must enable SMTP AUTH (authenticated SMTP) for the mailbox',
      )}\r\n`;
    case 'temporary':
      return `454 4.7.0 ${oneLine(`${server} could not check the OAuth2 login for ${credentials.user}: ${result.reason}. Try again later`)}\r\n`;
    case 'other':
      return `535 5.7.8 ${oneLine(`${refused}: ${result.reason}`)}\r\n`;
  }
}

/**
 * The upstream could not be reached or went away: `421` closes the session and makes queues
 * retry (a `554` greeting would make them bounce the mail).
 */
export function upstreamUnavailable(err: UpstreamError, phase: 'connecting' | 'session'): string {
  const status = err.kind === 'unreachable' || err.kind === 'timeout' ? '4.4.1' : '4.4.2';
  const what =
    phase === 'connecting'
      ? `Cannot connect to ${err.message}`
      : `Lost the connection to ${err.message}`;
  return `421 ${status} ${oneLine(`${what}. Try again later`)}\r\n`;
}

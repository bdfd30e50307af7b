import type { UpstreamCredentials } from '../auth/types.js';
import type { UpstreamError } from './upstream.js';

/**
 * Texts the proxy puts in its own replies, whatever the protocol: made safe for one protocol
 * line, and worded the same way in IMAP, POP3 and SMTP.
 */

/** Room for a reply's text: long enough for any message of ours, short of every line limit. */
const MAX_TEXT_BYTES = 900;

/**
 * Protocol text must stay on one line whatever a message contains (a server's reply, an identity
 * provider's error): line breaks become spaces, and the text is cut at `maxBytes` octets without
 * splitting a UTF-8 character.
 */
export function oneLine(text: string, maxBytes = MAX_TEXT_BYTES): string {
  // Line ends would split the reply; other control characters (a server's NUL or ESC) have no
  // place in protocol text and could drive a client's terminal.
  return truncateUtf8(
    text
      .replace(/[\r\n]+/g, ' ')
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?')
      .trim(),
    maxBytes,
  );
}

/**
 * The upstream refused the token itself: what it said, and the command that gets a new one.
 * `reason` often ends in the server's own full stop, which must not meet ours.
 */
export function tokenRejectedText(
  target: string,
  credentials: UpstreamCredentials,
  reason: string,
): string {
  return (
    `${target} refused the OAuth2 login for ${credentials.user}: ${reason.replace(/\.+$/, '')}. ` +
    `If this persists, re-authorise the account: oauth2-mail-proxy authorize ${credentials.account}`
  );
}

/**
 * The upstream could not be reached or failed during the login; `error` names it and says how.
 * A certificate problem is a configuration matter, so it gets no "try again later".
 */
export function cannotLogInText(error: UpstreamError): string {
  return error.kind === 'tls'
    ? `Cannot log in to ${error.message}`
    : `Cannot log in to ${error.message}. Try again later`;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that did not fit.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

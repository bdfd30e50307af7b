import type { UpstreamCredentials } from '../../auth/types.js';
import { describeXoauth2Challenge, encodeXoauth2 } from '../sasl.js';
import { UpstreamError } from '../upstream.js';
import type { UpstreamLines } from '../upstream-dialogue.js';

export type Pop3UpstreamVerdict =
  | {
      readonly kind: 'accepted';
      /** The server's text after `+OK`, e.g. `Logged in.` (may be empty). */
      readonly text: string;
    }
  /** An XOAUTH2 error challenge, `[AUTH]`, or no response code at all. */
  | { readonly kind: 'token-rejected'; readonly reason: string }
  /**
   * An `-ERR` whose response code names another cause; `reason` carries it verbatim with its code:
   * the client should see `[IN-USE]` or `[SYS/TEMP]`, and a good token must not be thrown away
   * for a locked mailbox.
   */
  | { readonly kind: 'refused'; readonly reason: string };

/** RFC 2449 / 3206 response codes that blame something other than the credentials. */
const NOT_ABOUT_THE_TOKEN = new Set(['SYS', 'IN-USE', 'LOGIN-DELAY']);

/**
 * Logs in to a POP3 server with SASL XOAUTH2 (RFC 5034 `AUTH` with the initial response on the
 * command line, which Dovecot and Office 365 both accept): waits for the greeting, sends the
 * token and, when the server answers with an error challenge, sends the empty line that ends the
 * exchange so the `-ERR` arrives.
 */
export async function loginPop3Upstream(
  upstream: UpstreamLines,
  credentials: UpstreamCredentials,
): Promise<Pop3UpstreamVerdict> {
  const greeting = await upstream.next();
  if (/^-ERR/i.test(greeting))
    throw new UpstreamError(
      'unreachable',
      upstream.target,
      `the server refused the connection: ${greeting.slice(4).trim()}`,
    );
  if (!/^\+OK/i.test(greeting))
    throw new UpstreamError(
      'closed',
      upstream.target,
      `unexpected greeting: ${greeting.slice(0, 80)}`,
    );

  upstream.send(`AUTH XOAUTH2 ${encodeXoauth2(credentials.user, credentials.accessToken)}`);

  let challenge: string | undefined;
  for (;;) {
    const line = await upstream.next();
    if (/^\+OK(?: |$)/i.test(line)) return { kind: 'accepted', text: line.slice(3).trim() };
    if (/^-ERR(?: |$)/i.test(line)) return refusal(line.slice(4).trim(), challenge);
    if (line.startsWith('+')) {
      // The first challenge is the error report; the empty line acknowledges it. A server that
      // keeps asking gets `*`, which RFC 5034 says it must answer with `-ERR`.
      upstream.send(challenge === undefined ? '' : '*');
      challenge ??= describeXoauth2Challenge(line.slice(1).trim());
      continue;
    }
    throw new UpstreamError(
      'closed',
      upstream.target,
      `unexpected reply to AUTH XOAUTH2: ${line.slice(0, 80)}`,
    );
  }
}

function refusal(text: string, challenge: string | undefined): Pop3UpstreamVerdict {
  const code = /^\[([^\]/]+)/.exec(text)?.[1]?.toUpperCase();
  if (code !== undefined && NOT_ABOUT_THE_TOKEN.has(code)) return { kind: 'refused', reason: text };
  const reason = challenge ?? 'the server rejected the token';
  return { kind: 'token-rejected', reason: text ? `${reason}: ${text}` : reason };
}

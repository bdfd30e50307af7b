import type { UpstreamCredentials } from '../../auth/types.js';
import { describeXoauth2Challenge, encodeXoauth2 } from '../sasl.js';
import { UpstreamError } from '../upstream.js';
import type { UpstreamLines } from '../upstream-dialogue.js';

/** Our tag for the one command we send upstream; the client never sees it. */
const TAG = 'P1';

export type ImapUpstreamVerdict =
  | {
      readonly kind: 'accepted';
      /** The server's text after `OK`, e.g. `[CAPABILITY IMAP4rev1 ...] Logged in`. */
      readonly text: string;
      /** Untagged lines the server sent before its tagged OK, passed on to the client. */
      readonly untagged: readonly string[];
    }
  /** An error challenge, `[AUTHENTICATIONFAILED]` / `[EXPIRED]` / `[ALERT]`, or a `NO` without a code. */
  | { readonly kind: 'token-rejected'; readonly reason: string }
  /** A `NO` whose response code names another cause, or a `BAD`; `reason` is the server's text. */
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Response codes (RFC 5530, RFC 9051) that put the blame on the credentials. Any other code names
 * another cause (`[UNAVAILABLE]`, `[INUSE]`, `[SERVERBUG]`, `[LIMIT]`...): a good token must not be
 * thrown away for a busy server, and the client should hear the code to act on it. `[ALERT]` is
 * how Gmail words "invalid credentials".
 */
const ABOUT_THE_TOKEN = new Set(['AUTHENTICATIONFAILED', 'EXPIRED', 'ALERT']);

/**
 * Logs in to an IMAP server with SASL XOAUTH2: waits for the greeting, sends the initial response
 * and, when the server answers with an error challenge, sends the empty line that ends the
 * exchange so the tagged `NO` arrives.
 */
export async function loginImapUpstream(
  upstream: UpstreamLines,
  credentials: UpstreamCredentials,
): Promise<ImapUpstreamVerdict> {
  const greeting = await upstream.next();
  if (/^\* BYE/i.test(greeting))
    throw new UpstreamError(
      'unreachable',
      upstream.target,
      `the server refused the connection: ${greeting.slice(2)}`,
    );
  if (!/^\* OK/i.test(greeting))
    throw new UpstreamError(
      'closed',
      upstream.target,
      `unexpected greeting: ${greeting.slice(0, 80)}`,
    );

  upstream.send(
    `${TAG} AUTHENTICATE XOAUTH2 ${encodeXoauth2(credentials.user, credentials.accessToken)}`,
  );

  const untagged: string[] = [];
  let challenge: string | undefined;
  for (;;) {
    const line = await upstream.next();
    if (line.startsWith('+')) {
      // The first challenge is the error report; the empty line acknowledges it. A server that
      // keeps asking gets `*`, which cancels the exchange (RFC 9051 section 6.2.2).
      upstream.send(challenge === undefined ? '' : '*');
      challenge ??= describeXoauth2Challenge(line.slice(1).trim());
    } else if (line.startsWith(`${TAG} `)) {
      const [, status = '', text = ''] = /^\S+ (\S+) ?(.*)$/.exec(line) ?? [];
      if (status.toUpperCase() === 'OK') return { kind: 'accepted', text, untagged };
      // A protocol error between us and the server, about our command rather than the token.
      if (status.toUpperCase() === 'BAD')
        return {
          kind: 'refused',
          reason: `${upstream.target} did not accept AUTHENTICATE XOAUTH2: BAD ${text}`,
        };
      return refusal(text, challenge);
    } else if (line.startsWith('* ')) {
      // Only CAPABILITY is sent here in practice; the client may want it.
      untagged.push(line);
    }
  }
}

function refusal(text: string, challenge: string | undefined): ImapUpstreamVerdict {
  const code = /^\[([^\]\s]+)/.exec(text)?.[1]?.toUpperCase();
  if (code !== undefined && !ABOUT_THE_TOKEN.has(code)) return { kind: 'refused', reason: text };
  const reason = challenge ?? 'the server rejected the token';
  return { kind: 'token-rejected', reason: text ? `${reason}: ${text}` : reason };
}

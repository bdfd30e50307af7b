import type { UpstreamCredentials } from '../../auth/types.js';
import { describeXoauth2Challenge, encodeXoauth2 } from '../sasl.js';
import { describeReply, enhancedCode, replyText } from './reply.js';
import type { SmtpUpstream } from './upstream.js';

/**
 * How the upstream took our `AUTH XOAUTH2`. Each failure is a different thing for the user to do:
 * re-authorise (`token-rejected`), or, for a refusal, ask the tenant admin (`smtp-auth-disabled`),
 * wait (`temporary`) or fix the configuration (`other`).
 */
export type SmtpUpstreamLogin =
  | {
      readonly kind: 'accepted';
      /** The server's text after `235` without its enhanced code, e.g. `Authentication successful`. */
      readonly text: string;
    }
  /** `535` (after an error challenge or not): the server did not accept this token. */
  | { readonly kind: 'token-rejected'; readonly reason: string }
  | { readonly kind: 'refused'; readonly cause: SmtpRefusalCause; readonly reason: string };

/**
 * - `smtp-auth-disabled`: Office 365's `535 5.7.139 ... SmtpClientAuthentication is disabled`: no token will do.
 * - `temporary`: a `4xx`, the server could not check the login right now.
 * - `other`: any other `5xx`: `504` when the server does not take XOAUTH2 at all, or Office 365's
 *   other `5.7.139` policy blocks (security defaults, conditional access), which a new token cannot lift.
 */
export type SmtpRefusalCause = 'smtp-auth-disabled' | 'temporary' | 'other';

const SMTP_AUTH_DISABLED =
  /SmtpClientAuthentication is disabled|SMTP ?AUTH(?:entication)? is disabled/i;
/** Office 365's enhanced code for "your organisation does not allow this login". */
const POLICY_BLOCK = '5.7.139';

/**
 * Logs in with SASL XOAUTH2 on an upstream that has seen the client's EHLO. When the server
 * answers with an error challenge (`334 <b64 JSON>`), sends the empty line that ends the exchange
 * so the final `535` arrives, and keeps what the challenge said for the user.
 */
export async function loginSmtpUpstream(
  upstream: SmtpUpstream,
  credentials: UpstreamCredentials,
): Promise<SmtpUpstreamLogin> {
  let reply = await upstream.command(
    `AUTH XOAUTH2 ${encodeXoauth2(credentials.user, credentials.accessToken)}`,
  );
  let challenge: string | undefined;
  if (reply.code === 334) {
    challenge = describeXoauth2Challenge(reply.lines[0]?.trim() ?? '');
    reply = await upstream.command('');
    // A server still asking after our empty line would take the client's next command as an answer.
    if (reply.code === 334) reply = await upstream.command('*');
  }

  if (reply.code === 235)
    return { kind: 'accepted', text: replyText(reply) || 'Authentication successful' };
  const said = describeReply(reply);
  const reason = challenge ? `${challenge}: ${said}` : `the server said ${said}`;
  if (SMTP_AUTH_DISABLED.test(said))
    return { kind: 'refused', cause: 'smtp-auth-disabled', reason: said };
  if (reply.code >= 400 && reply.code < 500) return { kind: 'refused', cause: 'temporary', reason };
  if (enhancedCode(reply) === POLICY_BLOCK) return { kind: 'refused', cause: 'other', reason };
  if (reply.code === 535 || challenge) return { kind: 'token-rejected', reason };
  return { kind: 'refused', cause: 'other', reason };
}

import { CLIENT_MECHANISMS } from './auth-exchange.js';
import type { SmtpReply } from './reply.js';

export interface EhloRewriteOptions {
  /** Our name, which opens the first line: the client talks to us, as our greeting said. */
  readonly hostname: string;
  /** The name the client gave in its EHLO. */
  readonly clientName: string;
  /** Offer STARTTLS: local TLS is configured and the client is not on TLS yet. */
  readonly canStartTls: boolean;
}

/**
 * Keywords the proxy answers itself before authentication. The upstream's AUTH line lists what it
 * accepts from us (XOAUTH2), not what a password client may send; its STARTTLS is ours to do.
 */
const OWNED_KEYWORDS = /^(?:AUTH|STARTTLS)(?:[ =]|$)/i;

/**
 * Rewrites the upstream's `250` EHLO reply for a password client: `AUTH PLAIN LOGIN`, STARTTLS only
 * when we can do it locally, and every other extension (SIZE, PIPELINING, 8BITMIME, SMTPUTF8,
 * CHUNKING, DSN, ENHANCEDSTATUSCODES...) exactly as the server offers it, because after the login
 * the client talks to the server itself.
 */
export function rewriteEhloReply(upstream: SmtpReply, options: EhloRewriteOptions): SmtpReply {
  const extensions = upstream.lines.slice(1).filter((line) => !OWNED_KEYWORDS.test(line.trim()));
  return {
    code: 250,
    lines: [
      `${options.hostname} Hello ${options.clientName}`,
      ...extensions,
      `AUTH ${CLIENT_MECHANISMS.join(' ')}`,
      ...(options.canStartTls ? ['STARTTLS'] : []),
    ],
  };
}

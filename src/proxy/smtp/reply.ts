import type { LineReader } from '../line-reader.js';

/**
 * One SMTP reply (RFC 5321 section 4.2): a three-digit code and one or more lines of text.
 * `250-a` / `250-b` / `250 c` is one reply with three lines, never three replies.
 */
export interface SmtpReply {
  readonly code: number;
  /** The text of each line, after `ddd-` / `ddd `. */
  readonly lines: readonly string[];
}

/** The server sent something that is not an SMTP reply. */
export class SmtpReplySyntaxError extends Error {
  constructor(readonly line: string) {
    super(`unexpected reply ${JSON.stringify(line.slice(0, 80))}`);
    this.name = 'SmtpReplySyntaxError';
  }
}

/**
 * Most one reply may hold, all its lines together. A real EHLO reply is well under 1 KiB; an endless
 * one (sent in clear text before STARTTLS, so by anyone on the path) must not grow the daemon.
 */
export const MAX_REPLY_BYTES = 64 * 1024;

/** The server's reply went on past {@link MAX_REPLY_BYTES}. */
export class SmtpReplyTooLongError extends Error {
  constructor() {
    super(`over-long reply (more than ${MAX_REPLY_BYTES} bytes)`);
    this.name = 'SmtpReplyTooLongError';
  }
}

const REPLY_LINE = /^([2-5]\d\d)([- ]|$)(.*)$/s;

/**
 * Reads one complete reply, all its continuation lines included; `null` when the server closed
 * the connection first. Throws `SmtpReplySyntaxError` for lines that are not reply lines or whose
 * code changes in the middle of a reply.
 */
export async function readSmtpReply(reader: LineReader): Promise<SmtpReply | null> {
  const lines: string[] = [];
  let code: number | undefined;
  let size = 0;
  for (;;) {
    const line = await reader.readLine();
    if (line === null) return null;
    size += line.length + 2;
    if (size > MAX_REPLY_BYTES) throw new SmtpReplyTooLongError();
    const match = REPLY_LINE.exec(line);
    if (!match) throw new SmtpReplySyntaxError(line);
    const lineCode = Number(match[1]);
    if (code !== undefined && lineCode !== code) throw new SmtpReplySyntaxError(line);
    code = lineCode;
    lines.push(match[3] ?? '');
    if (match[2] !== '-') return { code, lines };
  }
}

/** The reply as it goes on the wire, CRLF-terminated, continuation dashes on all but the last line. */
export function formatReply(reply: SmtpReply): string {
  const lines = reply.lines.length > 0 ? reply.lines : [''];
  return lines
    .map((text, index) => {
      const separator = index === lines.length - 1 ? ' ' : '-';
      return `${reply.code}${separator}${text}`.trimEnd() + '\r\n';
    })
    .join('');
}

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;

/** A reply's text on one line without its enhanced status code, for messages: `535 5.7.8 Bad` -> `Bad`. */
export function replyText(reply: SmtpReply): string {
  return reply.lines
    .map((line) => line.replace(ENHANCED_CODE, '').trim())
    .filter((line) => line !== '')
    .join(' ');
}

/** The reply's enhanced status code (RFC 3463), e.g. `5.7.139`, when its first line has one. */
export function enhancedCode(reply: SmtpReply): string | undefined {
  return ENHANCED_CODE.exec(reply.lines[0] ?? '')?.[0].trim();
}

/** `535 5.7.8 Bad credentials` style one-liner, for logs and messages naming what the server said. */
export function describeReply(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' ')}`.trim();
}

/**
 * Mail for the bulk transfers: a large attachment-like body of 76-character base64 lines, as
 * real mail carries. No line starts with a dot or a space, so neither POP3 dot-stuffing nor an
 * IMAP tag can appear inside it.
 */
import { randomBytes } from 'node:crypto';

const LINE_CHARS = 76;
const LINE_BYTES = LINE_CHARS + 2;

/** About `bytes` bytes of CRLF-terminated base64 lines (a whole number of lines). */
export function base64Lines(bytes: number): Buffer {
  const lines = Math.max(1, Math.floor(bytes / LINE_BYTES));
  const text = randomBytes(Math.ceil((lines * LINE_CHARS * 3) / 4))
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, 'x');
  const out = Buffer.allocUnsafe(lines * LINE_BYTES);
  for (let i = 0; i < lines; i += 1) {
    out.write(text.slice(i * LINE_CHARS, (i + 1) * LINE_CHARS), i * LINE_BYTES, 'latin1');
    out[i * LINE_BYTES + LINE_CHARS] = 0x0d;
    out[i * LINE_BYTES + LINE_CHARS + 1] = 0x0a;
  }
  return out;
}

/** The header block of a benchmark message, ending with the empty line. */
export function headers(from: string, to: string, subject: string): string {
  return [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join('\r\n');
}

/** A complete message of about `bytes` bytes, CRLF throughout. */
export function message(from: string, to: string, subject: string, bytes: number): Buffer {
  return Buffer.concat([Buffer.from(headers(from, to, subject), 'latin1'), base64Lines(bytes)]);
}

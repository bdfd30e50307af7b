import { suppressed } from './runs.js';

/**
 * What a client may receive from the proxy before its login, checked against each protocol's
 * grammar, written from the RFCs rather than from the proxy's code:
 *
 * - IMAP (RFC 9051 / 3501): `+` continuations, untagged `* OK|NO|BAD|BYE|PREAUTH|CAPABILITY|ID`,
 *   tagged `tag OK|NO|BAD` where the tag is ASTRING-CHARs other than `+`.
 * - POP3 (RFC 1939, 2449, 5034): `+OK` / `-ERR` status lines of at most 512 octets, `+ `
 *   continuations, multi-line bodies ending in `.`.
 * - SMTP (RFC 5321): three-digit codes, `-` on every line of a reply but the last, one code per
 *   reply, lines of at most 512 octets, text without control characters.
 *
 * Each returns the violations found, empty when the output is valid.
 */

export interface OutputOptions {
  /**
   * The connection ended in order (the proxy closed, or the client half-closed and waited), so
   * the output must end at a line boundary. False when the client vanished mid-stream.
   */
  readonly complete: boolean;
}

interface Lines {
  readonly lines: string[];
  readonly violations: string[];
}

/** Splits on CRLF; bare CR, bare LF, NUL and malformed UTF-8 are violations in every protocol. */
function splitCrlf(output: Buffer, { complete }: OutputOptions): Lines {
  const violations: string[] = [];
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const crlf = output.indexOf('\r\n', start);
    if (crlf < 0) break;
    lines.push(decodeLine(output.subarray(start, crlf), violations));
    start = crlf + 2;
  }
  if (start < output.length && complete) {
    violations.push(
      `output ends inside a line: ${JSON.stringify(output.subarray(start).toString('latin1'))}`,
    );
  }
  return { lines, violations };
}

/** See `suppressed`: control characters other than CR and LF echoed into reply text. */
const SUPPRESS_ECHOED_CONTROLS = suppressed('F2');

function decodeLine(raw: Buffer, violations: string[]): string {
  const bytes = SUPPRESS_ECHOED_CONTROLS
    ? Buffer.from(
        raw.toString('latin1').replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, '?'),
        'latin1',
      )
    : raw;
  const text = bytes.toString('utf8');
  const shown = JSON.stringify(bytes.toString('latin1'));
  if (!Buffer.from(text, 'utf8').equals(bytes)) violations.push(`not UTF-8: ${shown}`);
  if (/[\r\n\0]/.test(text)) violations.push(`bare CR, bare LF or NUL in a line: ${shown}`);
  return text;
}

// ASTRING-CHAR except "+": CHAR minus atom-specials ( ) { SP CTL % * " \, plus "]".
const IMAP_TAG = '[\\x21\\x23\\x24\\x26\\x27\\x2c-\\x5b\\x5d-\\x7a\\x7c-\\x7e]+';
const RESP_TEXT = '(?: \\[[A-Za-z0-9.-]+(?: [^\\]]*)?\\])?(?: .*)?';
const IMAP_LINE = [
  /^\+(?: .*)?$/,
  new RegExp(`^\\* (?:OK|NO|BAD|BYE|PREAUTH)${RESP_TEXT}$`),
  /^\* CAPABILITY(?: [\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+)+$/,
  /^\* ID (?:NIL|\(.*\))$/,
  new RegExp(`^${IMAP_TAG} (?:OK|NO|BAD)${RESP_TEXT}$`),
];

export function imapOutputViolations(output: Buffer, options: OutputOptions): string[] {
  const { lines, violations } = splitCrlf(output, options);
  if (lines.length > 0 && !/^\* (?:OK|PREAUTH|BYE)/.test(lines[0] ?? ''))
    violations.push(`greeting is not * OK / * BYE: ${JSON.stringify(lines[0])}`);
  for (const line of lines) {
    if (!IMAP_LINE.some((pattern) => pattern.test(line)))
      violations.push(`not an IMAP response line: ${JSON.stringify(line)}`);
  }
  return violations;
}

/** RFC 2449: a status line is at most 512 octets, CRLF included. */
const POP3_MAX_STATUS = 512 - 2;
const POP3_STATUS = /^(?:\+OK|-ERR)(?: .*)?$/;
const POP3_CONTINUATION = /^\+ .*$|^\+$/;

export function pop3OutputViolations(output: Buffer, options: OutputOptions): string[] {
  const { lines, violations } = splitCrlf(output, options);
  if (lines.length > 0 && !(lines[0] ?? '').startsWith('+OK'))
    violations.push(`greeting is not +OK: ${JSON.stringify(lines[0])}`);
  let body = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? '';
    if (body) {
      if (line === '.') body = false;
      else if (line.startsWith('.') && !line.startsWith('..'))
        violations.push(`body line not dot-stuffed: ${JSON.stringify(line)}`);
      continue;
    }
    if (POP3_STATUS.test(line)) {
      if (Buffer.byteLength(line) > POP3_MAX_STATUS)
        violations.push(`status line over 512 octets (${Buffer.byteLength(line)})`);
      // A +OK followed by a line that is neither a status nor a continuation opens a body.
      const next = lines[i + 1];
      body =
        line.startsWith('+OK') &&
        next !== undefined &&
        !POP3_STATUS.test(next) &&
        !POP3_CONTINUATION.test(next);
      continue;
    }
    if (!POP3_CONTINUATION.test(line))
      violations.push(`not a POP3 status or continuation line: ${JSON.stringify(line)}`);
  }
  if (body && options.complete) violations.push('multi-line response not ended with "."');
  return violations;
}

/** RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets, CRLF included. */
const SMTP_MAX_REPLY_LINE = 512 - 2;
const SMTP_LINE = /^([2-5][0-5]\d)(?:([- ])(.*))?$/;
/** textstring: HT and printable ASCII; UTF-8 is let through (SMTPUTF8), control characters are not. */
const SMTP_TEXT = /^[\t\x20-\x7e\u0080-\u{10ffff}]*$/u;

export function smtpOutputViolations(output: Buffer, options: OutputOptions): string[] {
  const { lines, violations } = splitCrlf(output, options);
  if (lines.length > 0 && !/^(?:220|421|554)[- ]/.test(lines[0] ?? ''))
    violations.push(`greeting is not 220 / 421 / 554: ${JSON.stringify(lines[0])}`);
  let replyCode: string | undefined;
  for (const line of lines) {
    const match = SMTP_LINE.exec(line);
    if (!match) {
      violations.push(`not an SMTP reply line: ${JSON.stringify(line)}`);
      continue;
    }
    const [, code, separator, text = ''] = match;
    if (Buffer.byteLength(line) > SMTP_MAX_REPLY_LINE)
      violations.push(
        `reply line over 512 octets (${Buffer.byteLength(line)}): ${JSON.stringify(line.slice(0, 80))}...`,
      );
    if (!SMTP_TEXT.test(text))
      violations.push(`control character in reply text: ${JSON.stringify(line)}`);
    if (replyCode !== undefined && code !== replyCode)
      violations.push(`code changes inside a multi-line reply: ${JSON.stringify(line)}`);
    replyCode = separator === '-' ? code : undefined;
  }
  if (replyCode !== undefined && options.complete) violations.push('multi-line reply not finished');
  return violations;
}

/** One client command line before authentication. */
export interface SmtpCommand {
  /** Upper-cased. */
  readonly verb: string;
  /** Everything after the verb and its spaces; undefined when there is nothing. */
  readonly argument: string | undefined;
}

/**
 * Splits `VERB argument...`; never fails, unknown verbs are the session's business. Done without
 * a backtracking pattern: `\s*(.*?)\s*$` takes quadratic time on a line of mixed whitespace, and
 * a client may send fifty 64 KiB lines before it logs in.
 */
export function parseSmtpCommand(line: string): SmtpCommand {
  const text = line.trim();
  const space = text.search(/\s/);
  const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
  const argument = space < 0 ? '' : text.slice(space).trim();
  return { verb, argument: argument === '' ? undefined : argument };
}

/** Verbs of RFC 5321 and its common extensions: the only words of a client line we ever log. */
const KNOWN_VERBS = new Set([
  'EHLO',
  'HELO',
  'LHLO',
  'AUTH',
  'STARTTLS',
  'MAIL',
  'RCPT',
  'DATA',
  'BDAT',
  'RSET',
  'NOOP',
  'QUIT',
  'VRFY',
  'EXPN',
  'HELP',
  'ETRN',
  'ATRN',
  'TURN',
  'XCLIENT',
  'XFORWARD',
]);

/**
 * The verb for a debug log line. Anything else is replaced: a client that is out of step may be
 * sending a base64 password as if it were a command.
 */
export function loggableVerb(verb: string): string {
  return KNOWN_VERBS.has(verb) ? verb : '(unknown)';
}

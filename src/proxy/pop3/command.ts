import { hasControlCharacter } from '../../auth/login-rules.js';

/** One POP3 command line (RFC 1939): a keyword and whatever follows it. */
export interface Pop3Command {
  /** Upper-cased keyword. */
  readonly verb: string;
  /**
   * Everything after the keyword and its one space, untouched: a `PASS` password may contain
   * spaces, also leading and trailing ones. Undefined when the keyword stands alone.
   */
  readonly argument: string | undefined;
}

const COMMAND = /^([A-Za-z]{1,16})(?: (.*))?$/s;

/** Splits a command line; undefined when it does not start with a keyword. */
export function parsePop3Command(line: string): Pop3Command | undefined {
  const match = COMMAND.exec(line);
  if (!match) return undefined;
  return { verb: (match[1] ?? '').toUpperCase(), argument: match[2] };
}

/**
 * The user name a `USER` argument gives: trimmed, and undefined when empty or holding control
 * characters. A client that ends its lines with a bare CR sends `USER name<CR>PASS secret` as one
 * line; that is no user name, and must neither be logged nor looked up (a refusal would log it).
 */
export function userName(argument: string | undefined): string | undefined {
  const name = argument?.trim();
  return name && !hasControlCharacter(name) ? name : undefined;
}

/** Commands of the TRANSACTION state (RFC 1939, 2449): they exist, but only after a login. */
export const TRANSACTION_VERBS: ReadonlySet<string> = new Set([
  'STAT',
  'LIST',
  'RETR',
  'DELE',
  'NOOP',
  'RSET',
  'TOP',
  'UIDL',
  'LAST',
]);

/** Commands of the AUTHORIZATION state, the ones this session answers itself. */
export const AUTHORIZATION_VERBS: ReadonlySet<string> = new Set([
  'CAPA',
  'USER',
  'PASS',
  'AUTH',
  'APOP',
  'STLS',
  'QUIT',
]);

/**
 * The keyword as it may appear in a log. Only known keywords are logged: a client that pipelines
 * a SASL exchange we refused sends its base64 credentials as lines of their own, and the first
 * word of such a line must not end up in a log file.
 */
export function loggableVerb(verb: string): string {
  return AUTHORIZATION_VERBS.has(verb) || TRANSACTION_VERBS.has(verb) ? verb : '(unknown)';
}

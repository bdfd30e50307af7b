import { LoginFailure } from './types.js';

/**
 * C0 and C1 controls, DEL, and Unicode's line and paragraph separators: in no account's name.
 * A CR LF would write a line of its own into a terminal log, an ESC or CSI would drive the
 * terminal, and \x01 is the separator of the XOAUTH2 string the name goes into.
 */
const CONTROL_CHARACTER = /[\p{Cc}\u2028\u2029]/u;

/** Whether `text` holds a character that no name a client sends may hold. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/**
 * The rules every login obeys before anyone looks it up, whatever the protocol and SASL
 * mechanism it came in by: a refusal, or undefined when the login may be asked about. A name
 * that breaks them is not looked up or logged: it can be the client's next lines swallowed by
 * an IMAP literal, or a PLAIN response given to AUTH LOGIN's name prompt, password included.
 */
export function loginRuleRefusal(login: {
  readonly username: string;
  readonly password: string;
}): LoginFailure | undefined {
  if (login.username === '') return new LoginFailure('unknown-account', 'The user name is empty');
  if (hasControlCharacter(login.username))
    return new LoginFailure('unknown-account', 'User names do not contain control characters');
  if (login.password === '') return new LoginFailure('bad-password', 'The password is empty');
  return undefined;
}

import type { LoginFailure } from '../../auth/types.js';

/** Capabilities we offer before login: what a password client needs, nothing we cannot honour. */
export function preAuthCapabilities(canStartTls: boolean): string {
  return ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID', 'AUTH=PLAIN', ...(canStartTls ? ['STARTTLS'] : [])].join(' ');
}

/**
 * The tagged `NO` for a refused login. RFC 5530 response codes let clients tell "wrong
 * credentials" (do not retry) from "try again later".
 */
export function loginRefusal(tag: string, failure: LoginFailure): string {
  const code = failure.temporary ? 'UNAVAILABLE' : 'AUTHENTICATIONFAILED';
  return `${tag} NO [${code}] ${oneLine(failure.message)}\r\n`;
}

/** Protocol text must stay on one line whatever a message contains. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 900);
}

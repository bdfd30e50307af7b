import type { Protocol } from '../config/types.js';
import type { RefusalReason } from './admission.js';

/** Why the proxy ends a conversation it has not finished: it is full, or it is stopping. */
export type FarewellReason = RefusalReason | 'shutting-down' | 'login-deadline';

const TEXT: Readonly<Record<FarewellReason, string>> = {
  'too-many-connections': 'Too many connections, try again later',
  'too-many-from-address': 'Too many connections from your address, try again later',
  'shutting-down': 'oauth2-mail-proxy is shutting down, try again shortly',
  'login-deadline': 'Too slow to log in, try again',
};

/**
 * The protocol's way of saying "not now" before closing, ready for the wire. Each is one the
 * protocol defines as temporary, so mail clients retry instead of reporting a failure:
 * IMAP `* BYE [UNAVAILABLE]` (RFC 5530), POP3 `-ERR [SYS/TEMP]` (RFC 3206), SMTP `421` with
 * enhanced code 4.7.0 (security/policy: too many connections) or 4.3.2 (system not accepting
 * network messages: shutting down).
 */
export function farewell(protocol: Protocol, reason: FarewellReason, hostname: string): string {
  const text = TEXT[reason];
  switch (protocol) {
    case 'IMAP':
      return `* BYE [UNAVAILABLE] ${text}\r\n`;
    case 'POP':
      return `-ERR [SYS/TEMP] ${text}\r\n`;
    case 'SMTP':
      return `421 ${reason === 'shutting-down' ? '4.3.2' : '4.7.0'} ${hostname} ${text}\r\n`;
  }
}

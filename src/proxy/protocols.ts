import type { Protocol, ServerConfig } from '../config/types.js';
import { imapSession } from './imap/session.js';
import { pop3Session } from './pop3/session.js';
import { smtpSession } from './smtp/session.js';
import type { ProtocolSession } from './session.js';
import type { UpstreamTarget } from './upstream.js';

const SESSIONS: Record<Protocol, ProtocolSession> = {
  IMAP: imapSession,
  POP: pop3Session,
  SMTP: smtpSession,
};

/** The pre-authentication state machine for a server section's protocol. */
export function sessionFor(protocol: Protocol): ProtocolSession {
  return SESSIONS[protocol];
}

/**
 * IMAP and POP3 upstreams use implicit TLS (993/995); SMTP uses STARTTLS when `server_starttls`
 * says so (587) and implicit TLS otherwise (465), as email-oauth2-proxy does.
 */
export function upstreamTarget(server: ServerConfig): UpstreamTarget {
  return {
    host: server.serverAddress,
    port: server.serverPort,
    security: server.protocol === 'SMTP' && server.serverStarttls ? 'starttls' : 'implicit',
  };
}

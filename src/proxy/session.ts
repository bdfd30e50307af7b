import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/types.js';
import type { ServerConfig } from '../config/types.js';
import type { EarlyUpstream } from './early-upstream.js';
import type { UpstreamTarget, UpstreamTlsOptions } from './upstream.js';

/** Bounds on what a client may make us hold before it has authenticated. */
export interface PreAuthLimits {
  /** Longest command line, in bytes. */
  readonly maxLineBytes: number;
  /** Largest IMAP literal / SASL response, in bytes. */
  readonly maxCredentialBytes: number;
  /** Commands allowed before a successful login. */
  readonly maxCommands: number;
  /** Idle time before the login, in milliseconds. */
  readonly idleTimeoutMs: number;
  /**
   * Time the client may take, all its waits together, to log in. The idle clock restarts on every
   * byte; this one does not, so a client trickling a byte every few seconds is still cut.
   */
  readonly loginDeadlineMs: number;
  /**
   * Connections still before their login, across every listener of the proxy; one more is told
   * "too many connections" and closed. Spliced (logged-in) sessions do not count.
   */
  readonly maxPreAuthConnections: number;
  /**
   * The same, from one source address. Loopback clients are exempt: every local program shares
   * 127.0.0.1, so for them this would only be a second, smaller total.
   */
  readonly maxPreAuthConnectionsPerAddress: number;
  /**
   * Upstream connections opened as clients connect, before their login, at once per upstream
   * (0: none). They save a login the server's round trips, but are held idle at the server.
   */
  readonly maxEarlyUpstream: number;
}

export const DEFAULT_LIMITS: PreAuthLimits = {
  // Dovecot's own limit: RFC 2971 allows an ID line of 31,807 bytes, and real clients send them.
  maxLineBytes: 64 * 1024,
  maxCredentialBytes: 16 * 1024,
  maxCommands: 50,
  idleTimeoutMs: 60_000,
  loginDeadlineMs: 120_000,
  maxEarlyUpstream: 16,
  maxPreAuthConnections: 1000,
  maxPreAuthConnectionsPerAddress: 100,
};

/** Everything a protocol session needs from the proxy core, and nothing more. */
export interface SessionContext {
  /** Short id that ties every log line of this connection together. */
  readonly id: string;
  readonly server: ServerConfig;
  readonly client: net.Socket;
  /** The real client's address: the socket's peer, or who a trusted balancer's PROXY header names. */
  readonly remoteAddress: string | undefined;
  readonly log: Logger;
  readonly auth: Authenticator;
  readonly limits: PreAuthLimits;
  readonly upstream: UpstreamTarget;
  readonly upstreamTls: UpstreamTlsOptions;
  /** For local STARTTLS/STLS, when the section configures a certificate. */
  readonly localTls?: tls.SecureContext | undefined;
  /** Name the proxy uses for itself in greetings. */
  readonly hostname: string;
  /**
   * Accept passwords over unencrypted connections from other machines
   * (`allow_plaintext_network_logins`). Loopback clients may always log in without TLS.
   */
  readonly plaintextLoginsFromNetwork: boolean;
  /** The upstream connection opened as the client connected, for the first login to take. */
  readonly earlyUpstream?: EarlyUpstream;
}

/** Both sides of a connection ready for the splice, with what each sent past the conversation. */
export interface SpliceSides {
  /** The client socket, possibly upgraded to TLS by a local STARTTLS. */
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Bytes the client sent that the server has not seen yet (a pipelining client's next commands). */
  readonly clientPending: Buffer;
  /** Bytes the server sent that the client has not seen yet. */
  readonly upstreamPending: Buffer;
}

/**
 * How a pre-authentication conversation ended: the client went away (or was sent away), or the
 * core should splice both sides, either after a login upstream as `account`, or (SMTP) because the
 * client went on without logging in and the server answers it for itself.
 */
export type SessionOutcome =
  | { readonly kind: 'closed' }
  | (SpliceSides & { readonly kind: 'authenticated'; readonly account: string })
  | (SpliceSides & { readonly kind: 'unauthenticated' });

/** A protocol's pre-authentication state machine. */
export type ProtocolSession = (context: SessionContext) => Promise<SessionOutcome>;

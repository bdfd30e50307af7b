import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/types.js';
import type { ServerConfig } from '../config/types.js';
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
}

export const DEFAULT_LIMITS: PreAuthLimits = {
  maxLineBytes: 8 * 1024,
  maxCredentialBytes: 16 * 1024,
  maxCommands: 50,
  idleTimeoutMs: 60_000,
};

/** Everything a protocol session needs from the proxy core, and nothing more. */
export interface SessionContext {
  /** Short id that ties every log line of this connection together. */
  readonly id: string;
  readonly server: ServerConfig;
  readonly client: net.Socket;
  readonly log: Logger;
  readonly auth: Authenticator;
  readonly limits: PreAuthLimits;
  readonly upstream: UpstreamTarget;
  readonly upstreamTls: UpstreamTlsOptions;
  /** For local STARTTLS/STLS, when the section configures a certificate. */
  readonly localTls?: tls.SecureContext;
  /** Name the proxy uses for itself in greetings. */
  readonly hostname: string;
}

/**
 * How a pre-authentication conversation ended: either the client went away (or was sent away),
 * or both sides are authenticated and the core should splice them.
 */
export type SessionOutcome =
  | { readonly kind: 'closed' }
  | {
      readonly kind: 'authenticated';
      /** The client socket, possibly upgraded to TLS by a local STARTTLS. */
      readonly client: net.Socket;
      readonly upstream: net.Socket;
      readonly clientPending: Buffer;
      readonly upstreamPending: Buffer;
      readonly account: string;
    };

/** A protocol's pre-authentication state machine. */
export type ProtocolSession = (context: SessionContext) => Promise<SessionOutcome>;

import type { Protocol } from '../../../src/config/types.js';
import type { ProtocolSession } from '../../../src/proxy/session.js';
import type { OutputOptions } from './wire-grammar.js';

/** A protocol's side of the checks. */
export interface ProtocolRules {
  readonly protocol: Protocol;
  readonly session: ProtocolSession;
  readonly outputViolations: (output: Buffer, options: OutputOptions) => string[];
  /** The go-ahead after which a client that does not start TLS gets TLS records, not text. */
  readonly startTlsGoAhead: RegExp;
  /** The base64 XOAUTH2 response in a line the proxy sent upstream, if it is one. */
  readonly xoauth2In: (line: string) => string | undefined;
  /** Other lines the proxy may send upstream before the login. */
  readonly allowedUpstream: (line: string) => boolean;
}

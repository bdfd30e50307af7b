import type { Protocol } from '../config/types.js';

/**
 * Why a local login could not be turned into an upstream one. Each protocol phrases the reply
 * from this (IMAP `NO [AUTHENTICATIONFAILED]` vs `NO [UNAVAILABLE]`, POP3 `-ERR [AUTH]` vs
 * `-ERR [SYS/TEMP]`, SMTP `535 5.7.8` vs `454 4.7.0`).
 */
export type LoginFailureReason =
  /** No account section matches the login name. */
  | 'unknown-account'
  /** The password does not unlock this account's stored tokens. */
  | 'bad-password'
  /** No usable token; an authorisation is waiting for the user. Temporary: retry later. */
  | 'authorisation-needed'
  /** The identity provider or the network failed; tokens are kept. Temporary: retry later. */
  | 'temporary'
  /** The account's configuration is wrong; retrying will not help until the user fixes it. */
  | 'config'
  /** A password sent in clear text over a network connection; the client must use TLS first. */
  | 'encryption-required';

export const TEMPORARY_FAILURES: ReadonlySet<LoginFailureReason> = new Set([
  'authorisation-needed',
  'temporary',
]);

/** A login refused locally, with a message safe to show the mail client (no secrets). */
export class LoginFailure extends Error {
  constructor(
    readonly reason: LoginFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'LoginFailure';
  }

  /** A temporary failure should make mail clients retry instead of giving up or bouncing. */
  get temporary(): boolean {
    return TEMPORARY_FAILURES.has(this.reason);
  }
}

/** What the upstream login needs. */
export interface UpstreamCredentials {
  /** The account section the login matched, used for token bookkeeping. */
  readonly account: string;
  /** The user name to send upstream in the XOAUTH2 `user=` field. */
  readonly user: string;
  readonly accessToken: string;
}

export interface LoginRequest {
  readonly username: string;
  readonly password: string;
  readonly protocol: Protocol;
  /** For logs, to tie the login to its connection. */
  readonly connectionId: string;
  /** The client's address, for slowing down password guessing per source. */
  readonly remoteAddress?: string;
  /**
   * Called once the attempt has its turn (at once, unless password guessing is being slowed):
   * the moment to start connecting upstream, so queued guesses hold no server connection.
   */
  readonly admitted?: () => void;
}

/**
 * The one seam between the protocol sessions and OAuth: protocol code asks for credentials and
 * reports how the upstream took them; it never sees how tokens are obtained.
 */
export interface Authenticator {
  /** Resolves with upstream credentials or rejects with a `LoginFailure`. */
  login(request: LoginRequest): Promise<UpstreamCredentials>;
  /**
   * The upstream refused the access token although it looked valid to us (revoked early, wrong
   * audience). The next login must not reuse it.
   */
  rejectedUpstream(credentials: UpstreamCredentials): void;
}

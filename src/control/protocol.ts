/**
 * The control socket's protocol, shared by the daemon and the CLI: one JSON object per line,
 * one request per connection, answered by one or more reply lines (the last one has `done`).
 * The socket is owner-only; it carries sign-in links and pasted codes, never tokens, and a mail
 * password only in `store`, typed by the owner into `authorize` in a terminal.
 */

export type ControlRequest =
  | { readonly op: 'status' }
  /** Start (or join) the account's authorisation; replies with what the user must do. */
  | { readonly op: 'authorize'; readonly account: string }
  /** Redeem a pasted redirect address for the account's pending code-flow authorisation. */
  | { readonly op: 'complete'; readonly account: string; readonly redirect: string }
  /** Wait until the account's pending authorisation completes or fails (device flow). */
  | { readonly op: 'wait'; readonly account: string }
  /**
   * Encrypt tokens authorised while no login was waiting with the mail client's password and store
   * them now, rather than leaving that to whichever login comes first.
   */
  | { readonly op: 'store'; readonly account: string; readonly password: string };

export type TokenState =
  'none' | 'pending' | 'active' | 'expired' | 'needs-reauthorisation' | 'authorised-unsaved';

export interface StoreStatus {
  readonly location: string;
  readonly up: boolean;
  /** Why it does not answer (no secrets); the daemon reconnects by itself. */
  readonly problem?: string | undefined;
}

export interface AccountStatus {
  readonly account: string;
  readonly state: TokenState;
  /** Unix seconds. */
  readonly accessTokenExpiry?: number;
  readonly hasRefreshToken: boolean;
  /** Unix seconds of the stored tokens' last write (email-oauth2-proxy's `last_activity`). */
  readonly lastActivity?: number;
  /**
   * Unix milliseconds of this daemon's last token request for the account (a refresh or a grant),
   * and how it went.
   */
  readonly lastRefresh?: { readonly at: number; readonly outcome: string };
  readonly pending?: {
    readonly flow: string;
    readonly url: string;
    readonly userCode?: string;
    readonly since: number;
    readonly waiting: number;
  };
}

export type ControlReply =
  | {
      readonly done: true;
      readonly ok: true;
      readonly accounts: readonly AccountStatus[];
      /** The token store (its URL without a password) and whether it answers. */
      readonly store?: StoreStatus;
    }
  | {
      readonly done: true;
      readonly ok: true;
      readonly account: string;
      readonly flow: 'authorization_code' | 'device';
      readonly url: string;
      readonly userCode?: string;
      readonly waiting: number;
    }
  | {
      readonly done: true;
      readonly ok: true;
      readonly account: string;
      readonly authorised: true;
      readonly loginWaiting: boolean;
    }
  | {
      readonly done: true;
      readonly ok: false;
      /** `paste`: ask for the address again; `unknown-account`, `config`, `credentials`, `transient`, `reauthorise`, `protocol`. */
      readonly kind: string;
      readonly message: string;
      readonly hint?: string;
    };

/** Longest request line accepted (a pasted address is well under this). */
export const MAX_REQUEST_BYTES = 64 * 1024;

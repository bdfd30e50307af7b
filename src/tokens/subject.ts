import type { AccountConfig } from '../config/types.js';

/** Whose tokens: the account section and the name the tokens are kept under. */
export interface TokenSubject {
  /**
   * The token store section: the account section's name, or, for a catch-all section
   * (`[@example.com]`), the login name, so every mailbox behind it has its own tokens
   * (as email-oauth2-proxy does).
   */
  readonly key: string;
  readonly account: AccountConfig;
  /** The name the mail client logged in with; the sign-in hint. */
  readonly loginName: string;
}

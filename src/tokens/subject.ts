import { findAccount, isCatchAll } from '../config/accounts.js';
import type { AccountConfig, ProxyConfig } from '../config/types.js';

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

/**
 * The token subject for a login name, or undefined when no account section matches. Catch-all
 * sections keep tokens per mailbox, under the login name.
 */
export function subjectFor(config: ProxyConfig, loginName: string): TokenSubject | undefined {
  const account = findAccount(config, loginName);
  if (!account) return undefined;
  return { key: isCatchAll(account) ? loginName : account.name, account, loginName };
}

/**
 * Which account section answers for a login name.
 */

import type { AccountConfig, ProxyConfig } from './types.js';

/**
 * Finds the account section for the login name a mail client sent.
 *
 * Precedence, first match wins:
 * 1. the section named exactly like the login (`[john.smith@example.com]`), ignoring case;
 * 2. `[@example.com]`, the catch-all for the login's domain (the part after its last `@`),
 *    ignoring case;
 * 3. `[@]`, the catch-all for every login.
 *
 * Steps 2 and 3 apply only when `allow_catch_all_accounts` is on (the loader refuses catch-all
 * sections otherwise). A catch-all's `name` starts with `@`: it is a template, and tokens obtained
 * through it belong to the login name, not to the section.
 *
 * Unlike email-oauth2-proxy, a login without `@` (`john`) matches only `[@]`, never `[@john]`.
 *
 * @returns the account, or undefined when no section answers for this login
 */
export function findAccount(config: ProxyConfig, username: string): AccountConfig | undefined {
  const login = username.toLowerCase();
  const exact = config.accounts.find(
    (account) => !isCatchAll(account) && account.name.toLowerCase() === login,
  );
  if (exact !== undefined || !config.options.allowCatchAllAccounts) return exact;

  const at = login.lastIndexOf('@');
  if (at >= 0) {
    const domainSection = login.slice(at);
    const domain = config.accounts.find((account) => account.name.toLowerCase() === domainSection);
    if (domain !== undefined) return domain;
  }
  return config.accounts.find((account) => account.name === '@');
}

/** True for `[@domain]` and `[@]` sections. */
export function isCatchAll(account: AccountConfig): boolean {
  return account.name.startsWith('@');
}

import type { AccountStatus, TokenState } from '../control/protocol.js';
import type { AccountState } from './account-slots.js';
import type { TokenSubject } from './subject.js';
import type { TokenManager } from './token-manager.js';
import { hasTokens } from './vault/vault.js';

/**
 * What `status` shows for each configured account (and each catch-all mailbox the daemon has
 * seen). Reads the store's plain fields; decrypts nothing.
 */
export async function tokenStatus(
  tokens: TokenManager,
  subjects: readonly TokenSubject[],
): Promise<AccountStatus[]> {
  const bySubject = new Map(subjects.map((subject) => [subject.key, subject]));
  const keys = new Set([
    ...bySubject.keys(),
    ...tokens.pending.list().map((pending) => pending.key),
    ...tokens.unsavedKeys(),
  ]);
  const result: AccountStatus[] = [];
  for (const key of keys) {
    const subject = bySubject.get(key);
    const fields = subject ? await tokens.readFields(subject).catch(() => undefined) : undefined;
    const expiry =
      fields?.access_token_expiry === undefined ? undefined : Number(fields.access_token_expiry);
    const pending = tokens.pending.get(key);
    const lastRefresh = tokens.lastOutcome(key);
    result.push({
      account: key,
      state: shownState(tokens.state(key), hasTokens(fields), expiry),
      hasRefreshToken: fields?.refresh_token !== undefined,
      ...(hasTokens(fields) &&
        expiry !== undefined &&
        Number.isFinite(expiry) && { accessTokenExpiry: expiry }),
      ...(hasTokens(fields) &&
        Number.isFinite(Number(fields?.last_activity)) && {
          lastActivity: Number(fields?.last_activity),
        }),
      ...(lastRefresh && { lastRefresh }),
      ...(pending && {
        pending: {
          flow: pending.flow,
          url: pending.url,
          since: pending.since,
          waiting: pending.waiting,
          ...(pending.userCode && { userCode: pending.userCode }),
        },
      }),
    });
  }
  return result;
}

/**
 * What `status` calls the account's state. Sign-ins and unsaved tokens come from the daemon's
 * state; whether tokens are stored, and whether they are still valid, from the store, which
 * another process may have changed since.
 */
function shownState(state: AccountState, stored: boolean, expiry: number | undefined): TokenState {
  if (state.name === 'pending') return 'pending';
  if (state.name === 'authorized-unsaved') return 'authorised-unsaved';
  if (!stored) return state.name === 'needs-reauthorization' ? 'needs-reauthorisation' : 'none';
  return expiry !== undefined && expiry > Date.now() / 1000 ? 'active' : 'expired';
}

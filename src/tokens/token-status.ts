import type { AccountStatus, TokenState } from '../control/protocol.js';
import type { TokenSubject } from './subject.js';
import type { TokenManager } from './token-manager.js';

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
  const now = Date.now() / 1000;
  const result: AccountStatus[] = [];
  for (const key of keys) {
    const subject = bySubject.get(key);
    const fields = subject ? await tokens.readFields(subject).catch(() => undefined) : undefined;
    const expiry =
      fields?.access_token_expiry === undefined ? undefined : Number(fields.access_token_expiry);
    const pending = tokens.pending.get(key);
    const lastRefresh = tokens.lastRefresh.get(key);
    const hasTokens = fields?.access_token !== undefined || fields?.refresh_token !== undefined;
    const state: TokenState = pending
      ? 'pending'
      : tokens.isUnsaved(key)
        ? 'authorised-unsaved'
        : !hasTokens
          ? tokens.needsReauthorization(key)
            ? 'needs-reauthorisation'
            : 'none'
          : expiry !== undefined && expiry > now
            ? 'active'
            : 'expired';
    result.push({
      account: key,
      state,
      hasRefreshToken: fields?.refresh_token !== undefined,
      ...(hasTokens &&
        expiry !== undefined &&
        Number.isFinite(expiry) && { accessTokenExpiry: expiry }),
      ...(hasTokens &&
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

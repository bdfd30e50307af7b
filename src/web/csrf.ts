import { randomBytes } from 'node:crypto';
import type { Session } from './sessions.js';

/** Forms a page may have open at once; the oldest token is dropped beyond this. */
const MAX_OPEN_FORMS = 200;

/** Outcome of checking a submitted form's token. */
export type FormCheck = 'ok' | 'missing' | 'used-or-unknown';

/**
 * One-time form tokens: every rendered form carries a fresh random token that belongs to the
 * session, and a submission spends it. A request forged by another site has none (and no cookie,
 * which is SameSite=Strict); a form sent twice (a replay, or the browser's resubmit) finds it spent.
 */
export function issueFormToken(session: Session): string {
  const token = randomBytes(24).toString('base64url');
  session.formTokens.add(token);
  if (session.formTokens.size > MAX_OPEN_FORMS) {
    const oldest = session.formTokens.values().next().value;
    if (oldest !== undefined) session.formTokens.delete(oldest);
  }
  return token;
}

export function spendFormToken(session: Session, token: string | undefined): FormCheck {
  if (!token) return 'missing';
  return session.formTokens.delete(token) ? 'ok' : 'used-or-unknown';
}

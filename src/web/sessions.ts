import { randomBytes } from 'node:crypto';

/** A signed-in browser: what it was last told, and the forms it may still send. */
export interface Session {
  readonly id: string;
  lastSeen: number;
  /** One message to show on the next page (the outcome of the last form), then dropped. */
  flash?: Flash;
  /** Form tokens handed out and not used yet (see csrf.ts). */
  readonly formTokens: Set<string>;
}

export interface Flash {
  readonly account?: string;
  readonly tone: 'ok' | 'error';
  readonly text: string;
}

export const SESSION_COOKIE = 'omp_session';
/** A session unused for this long is forgotten; the browser needs the access key again. */
const IDLE_MS = 12 * 60 * 60 * 1000;
/** Bounds memory against a client creating sessions in a loop (each needs the key anyway). */
const MAX_SESSIONS = 100;

/** Sessions in memory: a restart signs every browser out, which is the safe side. */
export class Sessions {
  private readonly sessions = new Map<string, Session>();

  create(): Session {
    this.prune();
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      lastSeen: Date.now(),
      formTokens: new Set(),
    };
    this.sessions.set(session.id, session);
    if (this.sessions.size > MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    return session;
  }

  /** The session named by the request's cookie header, if it is current. */
  fromCookie(cookieHeader: string | undefined): Session | undefined {
    const id = cookieValue(cookieHeader, SESSION_COOKIE);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return undefined;
    if (Date.now() - session.lastSeen > IDLE_MS) {
      this.sessions.delete(session.id);
      return undefined;
    }
    session.lastSeen = Date.now();
    return session;
  }

  end(session: Session): void {
    this.sessions.delete(session.id);
  }

  private prune(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions)
      if (now - session.lastSeen > IDLE_MS) this.sessions.delete(id);
  }
}

/**
 * The session cookie: never readable by scripts, never sent along with a request another site
 * starts, and only over TLS when the page is served with TLS.
 */
export function sessionCookie(session: Session | undefined, secure: boolean): string {
  const value = session ? session.id : '';
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
    ...(session ? [] : ['Max-Age=0']),
  ].join('; ');
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name)
      return part.slice(separator + 1).trim();
  }
  return undefined;
}

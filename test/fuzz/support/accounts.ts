import fc from 'fast-check';
import type { Authenticator, LoginRequest, UpstreamCredentials } from '../../../src/auth/types.js';
import { FixedAuthenticator } from '../../support/session-harness.js';

/**
 * The accounts of one fuzz case. The user names are fixed, the passwords are generated per case,
 * so every conversation logs in (or fails to) with secrets the log scan can look for.
 */

/** Its token is the one the fuzz upstream accepts. */
export const ACCEPTED_USER = 'alice@example.com';
/** Its token is refused by the upstream (revoked, say). */
export const STALE_USER = 'bob@example.com';
/** Has no token yet: the authenticator answers "authorisation needed". */
export const PENDING_USER = 'carol@example.com';
export const KNOWN_USERS = [ACCEPTED_USER, STALE_USER, PENDING_USER] as const;

export const ACCEPTED_TOKEN = 'ya29.fuzz-accepted-token-7f3Kq';
export const STALE_TOKEN = 'ya29.fuzz-stale-token-Q81zx';

/** How the proxy should answer a login, whatever the protocol calls it. */
export type LoginOutcome = 'accepted' | 'token-rejected' | 'pending' | 'refused';

export interface CaseAccounts {
  /** The right password of each known user. */
  readonly passwords: Readonly<Record<(typeof KNOWN_USERS)[number], string>>;
  /** Other passwords the client may try; none is anyone's right password. */
  readonly wrong: readonly string[];
}

/** Characters that stress quoting in every protocol: spaces, quotes, braces, non-ASCII. */
const passwordChar = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
  },
  fc.constantFrom(
    ' ',
    '"',
    '\\',
    '{',
    '}',
    '(',
    ')',
    '%',
    '*',
    '+',
    '=',
    ']',
    '[',
    '\t',
    ':',
    '@',
    '/',
    'é',
    '日',
    '😀',
    '\x01',
    '\x7f',
  ),
);

/**
 * Every password carries one of these markers, so the log scan never mistakes ordinary log text
 * (timestamps, hex ids) for a password, however far a failure shrinks the rest of it.
 */
const MARKERS = ['Pw7q', 'pa ss', 'p"w\\d', 'пароль', '{9}x', 'k(e)y'];

/** A password as clients send them: never empty, never a NUL, CR or LF. */
export const password: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ unit: passwordChar, maxLength: 10 }),
    fc.constantFrom(...MARKERS),
    fc.string({ unit: passwordChar, maxLength: 10 }),
  )
  .map(([before, marker, after]) => `${before}${marker}${after}`);

export const caseAccounts: fc.Arbitrary<CaseAccounts> = fc
  .uniqueArray(password, { minLength: 5, maxLength: 5 })
  .map(([a = '', b = '', c = '', ...wrong]) => ({
    passwords: { [ACCEPTED_USER]: a, [STALE_USER]: b, [PENDING_USER]: c },
    wrong,
  }));

/** Login names a client may use: the known accounts, and unknown ones of all shapes. */
export const loginName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_USERS) },
  fc.constantFrom('mallory@example.com', 'ALICE@example.com', 'user', 'a b', 'x"y', 'ünï@例え.jp'),
  fc.string({
    unit: fc.constantFrom(...'abcz.@-_+ "\\{}()*%é\x1b\x7f'),
    minLength: 1,
    maxLength: 24,
  }),
);

/** A password for a login attempt: most often the user's right one. */
export function passwordFor(accounts: CaseAccounts, username: string): fc.Arbitrary<string> {
  const right = (accounts.passwords as Record<string, string>)[username];
  const wrong = fc.constantFrom(...accounts.wrong);
  return right === undefined
    ? wrong
    : fc.oneof({ weight: 3, arbitrary: fc.constant(right) }, wrong);
}

/** What the authenticator and the fuzz upstream make of a login. */
export function expectedOutcome(
  accounts: CaseAccounts,
  username: string,
  pass: string,
): LoginOutcome {
  if ((accounts.passwords as Record<string, string>)[username] !== pass) return 'refused';
  if (username === ACCEPTED_USER) return 'accepted';
  if (username === STALE_USER) return 'token-rejected';
  return 'pending';
}

/** Every secret of a case, in the forms a log could hold it. */
export function secretsOf(accounts: CaseAccounts): string[] {
  return [...Object.values(accounts.passwords), ...accounts.wrong, ACCEPTED_TOKEN, STALE_TOKEN];
}

export interface AuthenticatorCall {
  readonly username: string;
  readonly password: string;
  /** The credentials handed out, or undefined for a refusal. */
  readonly credentials: UpstreamCredentials | undefined;
}

/**
 * The proxy's authenticator for a fuzz listener: a `FixedAuthenticator` for the current case's
 * accounts, recording every call so properties can compare what reached it with what was sent.
 */
export class CaseAuthenticator implements Authenticator {
  calls: AuthenticatorCall[] = [];
  private current = new FixedAuthenticator({});

  /** Starts a case: these accounts, no calls yet. */
  use(accounts: CaseAccounts): void {
    this.calls = [];
    this.current = new FixedAuthenticator({
      [ACCEPTED_USER]: { password: accounts.passwords[ACCEPTED_USER], result: ACCEPTED_TOKEN },
      [STALE_USER]: { password: accounts.passwords[STALE_USER], result: STALE_TOKEN },
      [PENDING_USER]: {
        password: accounts.passwords[PENDING_USER],
        result: {
          reason: 'authorisation-needed',
          message: `Authorisation needed: run oauth2-mail-proxy authorize ${PENDING_USER}`,
        },
      },
    });
  }

  async login(request: LoginRequest): Promise<UpstreamCredentials> {
    const { username, password: pass } = request;
    try {
      const credentials = await this.current.login(request);
      this.calls.push({ username, password: pass, credentials });
      return credentials;
    } catch (err) {
      this.calls.push({ username, password: pass, credentials: undefined });
      throw err;
    }
  }

  rejectedUpstream(credentials: UpstreamCredentials): void {
    this.current.rejectedUpstream(credentials);
  }
}

/**
 * Reads an access token's claims when it is a JWT (Microsoft work and school accounts get JWTs;
 * personal Microsoft accounts and Google get opaque tokens) and finds what would make a mail
 * server refuse it. The signature is not verified: the mail server does that, and this only
 * explains in advance why it would say no.
 */
import type { Protocol } from '../config/types.js';
import {
  GRAPH_AUDIENCES,
  MICROSOFT_PERMISSIONS,
  OUTLOOK_AUDIENCES,
  type ProviderFamily,
} from './provider-facts.js';
import type { CheckResult } from './report.js';

/** The claims that decide whether a mail server takes the token. */
export interface AccessTokenClaims {
  readonly audiences: readonly string[];
  /** Delegated permissions (`scp`, or `scope` at other providers). */
  readonly scopes: readonly string[];
  /** App-only permissions (`roles`). */
  readonly roles: readonly string[];
  /** `upn`, `unique_name`, `preferred_username` or `email`: whose mailbox the token opens. */
  readonly user?: string | undefined;
  /** Unix seconds. */
  readonly expiresAt?: number;
  /** Microsoft's directory (tenant) ID. */
  readonly tenant?: string;
}

/**
 * The payload of a JWT, or undefined for anything else (an opaque token, a JWE). Never throws.
 */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8'));
    const payload: unknown = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    if (!isObject(header) || typeof header.alg !== 'string' || !isObject(payload)) return undefined;
    return payload;
  } catch {
    return undefined;
  }
}

/** The mail-relevant claims of a JWT access token, or undefined when the token is opaque. */
export function readAccessTokenClaims(token: string): AccessTokenClaims | undefined {
  const payload = decodeJwtPayload(token);
  if (!payload) return undefined;
  const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter(
    (value): value is string => typeof value === 'string',
  );
  const scopeText =
    typeof payload.scp === 'string'
      ? payload.scp
      : typeof payload.scope === 'string'
        ? payload.scope
        : '';
  const roles = Array.isArray(payload.roles)
    ? payload.roles.filter((role): role is string => typeof role === 'string')
    : [];
  const user = [payload.upn, payload.unique_name, payload.preferred_username, payload.email].find(
    (value): value is string => typeof value === 'string' && value !== '',
  );
  // Elsewhere `sub` is often the login name; Microsoft's is an opaque per-app ID and is not used.
  const subject =
    typeof payload.sub === 'string' && payload.sub.includes('@') ? payload.sub : undefined;
  return {
    audiences,
    scopes: scopeText.split(/\s+/).filter(Boolean),
    roles,
    ...((user ?? subject) !== undefined && { user: user ?? subject }),
    ...(typeof payload.exp === 'number' && { expiresAt: payload.exp }),
    ...(typeof payload.tid === 'string' && { tenant: payload.tid }),
  };
}

/** What the account expects of its token. */
export interface TokenExpectations {
  /** The login name the proxy sends upstream as the XOAUTH2 user. */
  readonly loginName: string;
  readonly protocols: readonly Protocol[];
  readonly family: ProviderFamily;
  /** Unix seconds. */
  readonly now: number;
}

/** One reason a mail server would refuse the token, and what it means. */
export interface ClaimProblem {
  readonly kind: 'user' | 'audience' | 'scope' | 'expired';
  readonly text: string;
}

/** Every mismatch between the token and the account, most decisive first. */
export function claimProblems(
  claims: AccessTokenClaims,
  expected: TokenExpectations,
): ClaimProblem[] {
  const problems: ClaimProblem[] = [];
  const appOnly = claims.scopes.length === 0 && claims.roles.length > 0;

  if (expected.family === 'microsoft') {
    const normalised = claims.audiences.map((audience) =>
      audience.replace(/\/+$/, '').toLowerCase(),
    );
    if (normalised.some((audience) => GRAPH_AUDIENCES.has(audience))) {
      problems.push({
        kind: 'audience',
        text: `the token is for Microsoft Graph (aud ${claims.audiences.join(', ')}): IMAP, POP and SMTP servers reject it`,
      });
    } else if (
      normalised.length > 0 &&
      !normalised.some((audience) => OUTLOOK_AUDIENCES.has(audience))
    ) {
      problems.push({
        kind: 'audience',
        text: `the token is for ${claims.audiences.join(', ')}, not Exchange Online (https://outlook.office.com): mail servers reject it`,
      });
    }
    const held = appOnly ? claims.roles : claims.scopes;
    const granted = new Set(held.map((permission) => permission.toLowerCase()));
    const missing = expected.protocols.filter((protocol) => {
      const permission = MICROSOFT_PERMISSIONS[protocol];
      return !granted.has((appOnly ? permission.appOnly : permission.delegated).toLowerCase());
    });
    if (missing.length > 0) {
      const names = missing.map((protocol) =>
        appOnly
          ? MICROSOFT_PERMISSIONS[protocol].appOnly
          : MICROSOFT_PERMISSIONS[protocol].delegated,
      );
      problems.push({
        kind: 'scope',
        text: `the token lacks ${names.join(', ')} (it has ${held.join(' ') || 'no permissions'}): the ${missing.join(', ')} server${missing.length === 1 ? '' : 's'} will refuse it`,
      });
    }
  }

  if (
    !appOnly &&
    claims.user !== undefined &&
    claims.user.toLowerCase() !== expected.loginName.toLowerCase()
  ) {
    problems.push({
      kind: 'user',
      text: `the token belongs to ${claims.user}, not ${expected.loginName}: the server refuses it (Office 365 may accept the login, then drop the session)`,
    });
  }
  if (claims.expiresAt !== undefined && claims.expiresAt <= expected.now) {
    problems.push({
      kind: 'expired',
      text: `the token expired at ${new Date(claims.expiresAt * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}`,
    });
  }
  return problems;
}

/** `user x, audience y, scopes z, tenant t, expires e`: what the token says, for the check line. */
export function describeClaims(claims: AccessTokenClaims): string {
  const parts = [
    `user ${claims.user ?? '(none: app-only or not stated)'}`,
    `audience ${claims.audiences.join(', ') || '(none)'}`,
    claims.roles.length > 0 && claims.scopes.length === 0
      ? `roles ${claims.roles.join(' ')}`
      : `scopes ${claims.scopes.join(' ') || '(none)'}`,
    ...(claims.tenant ? [`tenant ${claims.tenant}`] : []),
    ...(claims.expiresAt !== undefined
      ? [`expires ${new Date(claims.expiresAt * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')}`]
      : []),
  ];
  return parts.join('; ');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The claims check: passes when the token's claims fit the account, fails on each mismatch, and
 * warns when the token is opaque (personal Microsoft accounts, Google) and cannot be read.
 */
export function claimsCheck(
  accessToken: string,
  expected: TokenExpectations,
  authorizeCommand: string,
): { result: CheckResult; problems: ClaimProblem[] } {
  const claims = readAccessTokenClaims(accessToken);
  if (!claims) {
    return {
      result: {
        status: 'warn',
        title:
          'access token claims: not checked, the token is opaque (not a JWT); the server logins below are the test',
      },
      problems: [],
    };
  }
  const problems = claimProblems(claims, expected);
  if (problems.length === 0)
    return {
      result: { status: 'pass', title: `access token claims: ${describeClaims(claims)}` },
      problems,
    };
  return {
    result: {
      status: 'fail',
      title: `access token claims: ${describeClaims(claims)}`,
      details: [
        ...problems.map((problem) => `Mismatch: ${problem.text}.`),
        ...(problems.some((problem) => problem.kind === 'audience' || problem.kind === 'scope')
          ? [
              'Ask for the Exchange Online scopes in oauth2_scope (https://outlook.office.com/IMAP.AccessAsUser.All and so on; see the scopes check above).',
            ]
          : []),
        `Then authorise again, signing in as ${expected.loginName}: ${authorizeCommand}`,
      ],
    },
    problems,
  };
}

/**
 * Known failures in plain words: what happened, whether re-authorising can help, and the exact
 * thing to change or run. Each function turns one failure into a check line and its details.
 */
import type { ProxyConfig, ServerConfig } from '../config/types.js';
import type { OAuthError } from '../oauth/index.js';
import { upstreamTarget } from '../proxy/protocols.js';
import { describeTarget, type UpstreamError } from '../proxy/upstream.js';
import { describeServerHint, providerFamily, providerServerHint } from './provider-facts.js';
import type { CheckResult } from './report.js';
import type { TokenSubject } from '../tokens/subject.js';
import type { ClaimProblem } from './token-claims.js';
import type { ProbeOutcome } from './upstream-probe.js';

/** The account being checked and how to authorise it: what every explanation may refer to. */
export interface AccountContext {
  readonly config: ProxyConfig;
  readonly subject: TokenSubject;
  /** The exact `oauth2-mail-proxy authorize ...` command for this account and these files. */
  readonly authorizeCommand: string;
}

/** For the upstream checks, also what the token's claims said. */
export interface ExplainContext extends AccountContext {
  /** Why the token's own claims say a server would refuse it (empty for opaque tokens). */
  readonly claimProblems: readonly ClaimProblem[];
}

/** `[IMAP-1993] of /etc/oauth2-mail-proxy/config.ini`. */
function sectionOf(context: AccountContext, section: string): string {
  return `[${section}] of ${context.config.file}`;
}

function authorizeAgain(context: AccountContext): string {
  return `Authorise again, signing in as ${context.subject.loginName}: ${context.authorizeCommand}`;
}

/** The refresh (or app-only token request) failed: whose move it is, and what to do. */
export function explainTokenFailure(
  step: string,
  error: OAuthError,
  context: AccountContext,
  timeoutMs: number,
): CheckResult {
  const details: string[] = [];
  switch (error.kind) {
    case 'reauthorise':
      details.push(error.hint, authorizeAgain(context));
      break;
    case 'config':
      details.push(error.hint);
      if (error.configKey)
        details.push(
          `Fix ${error.configKey} in ${sectionOf(context, context.subject.account.name)}; re-authorising alone will not help.`,
        );
      break;
    case 'transient':
      details.push(...unreachableProvider(error, context, timeoutMs));
      break;
    case 'paste':
    case 'credentials':
      details.push(error.hint);
      break;
  }
  return { status: 'fail', title: `${step}: ${error.message}`, details };
}

function unreachableProvider(
  error: OAuthError,
  context: AccountContext,
  timeoutMs: number,
): string[] {
  const origin =
    URL.parse(context.subject.account.tokenUrl)?.origin ?? context.subject.account.tokenUrl;
  const kept =
    'Nothing is wrong with the stored tokens; they were kept. Run the check again once the provider answers.';
  switch (error.code) {
    case 'dns':
      return [
        `The identity provider ${origin} cannot be reached: its host name does not resolve.`,
        'Check DNS on this machine, and token_url.',
        kept,
      ];
    case 'timeout':
      return [
        `The identity provider ${origin} did not answer within ${Math.round(timeoutMs / 1000)} s.`,
        'Check the network, a firewall or VPN in the way, and token_url.',
        kept,
      ];
    case 'tls':
      return [
        `The TLS connection to the identity provider ${origin} failed.`,
        'Check the system clock; behind a TLS-intercepting proxy, trust its CA with NODE_EXTRA_CA_CERTS.',
        kept,
      ];
    case 'network':
    case 'aborted':
      return [
        `The identity provider ${origin} cannot be reached (connection failed).`,
        "Check this machine's network connection and firewall, and token_url.",
        kept,
      ];
    default:
      return [
        `The identity provider ${origin} answered, but cannot serve the request right now. Try again later.`,
        kept,
      ];
  }
}

/** One upstream's outcome as a check line. */
export function explainProbe(
  server: ServerConfig,
  outcome: ProbeOutcome,
  context: ExplainContext,
  timeoutMs: number,
): CheckResult {
  const name = `${server.protocol} ${describeTarget(upstreamTarget(server))}`;
  switch (outcome.kind) {
    case 'ok':
      return { status: 'pass', title: `${name}: ${outcome.summary}` };
    case 'ca-file':
      return {
        status: 'fail',
        title: `${name}: server_ca_file cannot be read`,
        details: [outcome.problem, `Fix server_ca_file in ${sectionOf(context, server.section)}.`],
      };
    case 'upstream':
      return explainUpstreamError(name, server, outcome.error, context, timeoutMs);
    case 'token-rejected':
      return {
        status: 'fail',
        title: `${name}: ${outcome.reason}`,
        details: [...tokenRejectedReasons(server, context), authorizeAgain(context)],
      };
    case 'dropped':
      return {
        status: 'fail',
        title: `${name}: the login was accepted, but the session failed at the first command (${outcome.reason})`,
        details: [
          ...(context.claimProblems.length > 0
            ? context.claimProblems.map((problem) => `The token's claims say: ${problem.text}.`)
            : [
                `Office 365 does this when the token belongs to another user than ${context.subject.loginName}.`,
              ]),
          authorizeAgain(context),
        ],
      };
    case 'refused':
      return explainRefusal(name, server, outcome, context);
  }
}

function tokenRejectedReasons(server: ServerConfig, context: ExplainContext): string[] {
  if (context.claimProblems.length > 0)
    return context.claimProblems.map((problem) => `Why: ${problem.text}.`);
  const login = context.subject.loginName;
  const lines = [
    'The usual causes, most likely first:',
    `- the account was authorised by signing in as someone other than ${login} (the server only takes ${login}'s token);`,
    `- the token does not carry the scope for ${server.protocol} (see the scopes check above);`,
    '- the grant was revoked, or the access token was withdrawn early.',
  ];
  if (providerFamily(context.subject.account) === 'microsoft' && server.protocol !== 'SMTP') {
    const setting = server.protocol === 'IMAP' ? '-ImapEnabled' : '-PopEnabled';
    lines.push(
      `- Office 365 also refuses every token while ${server.protocol} is disabled for the mailbox (admin: Set-CASMailbox -Identity ${login} ${setting} $true).`,
    );
  }
  return lines;
}

/**
 * IMAP (RFC 5530) and POP3 (RFC 3206, 2449) response codes that put a refusal on the server's
 * side, and what they mean for the user.
 */
const SERVER_SIDE_CODES: ReadonlyMap<string, string> = new Map([
  [
    'UNAVAILABLE',
    'The server could not check the login right now (a temporary problem on its side, such as its own call to the identity provider). Try again later.',
  ],
  [
    'SYS/TEMP',
    'The server could not check the login right now (a temporary problem on its side, such as its own call to the identity provider). Try again later.',
  ],
  [
    'IN-USE',
    'The mailbox is in use by another session (POP3 allows one at a time): close other mail clients, then check again.',
  ],
  [
    'INUSE',
    'The mailbox is in use by another session: close other mail clients, then check again.',
  ],
  ['LOGIN-DELAY', 'The server limits how often the mailbox may log in; check again later.'],
]);

function explainRefusal(
  name: string,
  server: ServerConfig,
  outcome: Extract<ProbeOutcome, { kind: 'refused' }>,
  context: ExplainContext,
): CheckResult {
  const login = context.subject.loginName;
  switch (outcome.cause) {
    case 'smtp-auth-disabled':
      return {
        status: 'fail',
        title: `${name}: SMTP AUTH is disabled for this mailbox or tenant (${outcome.reason})`,
        details: [
          'The token is fine and re-authorising will NOT help: Office 365 refuses every authenticated SMTP login',
          '(password or OAuth) while SMTP AUTH is turned off, which is the default for newer tenants.',
          'An Exchange Online administrator must enable it for this mailbox, in PowerShell:',
          `  Set-CASMailbox -Identity ${login} -SmtpClientAuthenticationDisabled $false`,
          'or for the whole organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false',
          '(Security Defaults in Microsoft Entra ID block it too). Sending works within an hour of the change.',
        ],
      };
    case 'temporary':
      return {
        status: 'fail',
        title: `${name}: the server cannot check logins right now (${outcome.reason})`,
        details: ['This is on the server side and temporary; the token is kept. Try again later.'],
      };
    default: {
      const code = /^\[([^\]\s]+)/.exec(outcome.reason)?.[1]?.toUpperCase();
      const why = context.claimProblems.map((problem) => `Why, most likely: ${problem.text}.`);
      const serverSide = code === undefined ? undefined : SERVER_SIDE_CODES.get(code);
      if (serverSide)
        return {
          status: 'fail',
          title: `${name}: the server refused the login: ${outcome.reason}`,
          details: [serverSide, ...why],
        };
      const policy = /5\.7\.139/.test(outcome.reason);
      const noXoauth2 =
        /^50[0-4]\b/.test(outcome.reason) ||
        /does not support|not supported|unrecognized/i.test(outcome.reason);
      const hint = providerServerHint(context.subject.account, server.protocol);
      const details = policy
        ? [
            'Office 365 blocked the login by policy (Security Defaults, Conditional Access or a mailbox setting).',
            'A new token cannot lift that; ask the tenant administrator.',
          ]
        : noXoauth2
          ? [
              `The server does not take AUTH XOAUTH2 here: check server_address and server_port in ${sectionOf(context, server.section)}` +
                (hint ? ` (${describeServerHint(hint)} for this provider).` : '.'),
            ]
          : why.length > 0
            ? why
            : [
                'The server refused the login for a reason other than the token; its words are above.',
              ];
      return {
        status: 'fail',
        title: `${name}: the server refused the login: ${outcome.reason}`,
        details,
      };
    }
  }
}

function explainUpstreamError(
  name: string,
  server: ServerConfig,
  error: UpstreamError,
  context: ExplainContext,
  timeoutMs: number,
): CheckResult {
  const where = sectionOf(context, server.section);
  const hint = providerServerHint(context.subject.account, server.protocol);
  const expected = hint ? ` (for this provider: ${describeServerHint(hint)})` : '';
  const detail = error.message.startsWith(`${error.target}: `)
    ? error.message.slice(error.target.length + 2)
    : error.message;
  switch (error.kind) {
    case 'unreachable':
      return {
        status: 'fail',
        title: `${name}: cannot connect (${detail})`,
        details: [
          `Check server_address and server_port in ${where}${expected}, and that this machine can reach the server (firewall, VPN).`,
        ],
      };
    case 'timeout':
      return {
        status: 'fail',
        title: `${name}: no answer within ${Math.round(timeoutMs / 1000)} s`,
        details: [
          `A firewall may be dropping the connection (some networks block outgoing mail ports), or server_address/server_port in ${where} point at the wrong place${expected}.`,
        ],
      };
    case 'tls':
      return {
        status: 'fail',
        title: `${name}: TLS failed (${detail})`,
        details: tlsAdvice(server, detail, where, expected),
      };
    case 'closed':
      return {
        status: 'fail',
        title: `${name}: the connection broke (${detail})`,
        details: [
          `Try again; if it repeats, check server_port and the TLS mode in ${where}${expected}.`,
        ],
      };
  }
}

function tlsAdvice(
  server: ServerConfig,
  detail: string,
  where: string,
  expected: string,
): string[] {
  if (
    /WRONG_VERSION_NUMBER|wrong version number|packet length|unknown protocol|EPROTO/i.test(detail)
  ) {
    return server.protocol === 'SMTP'
      ? [
          'The server does not speak TLS from the first byte on this port.',
          `Port 587 is plain text upgraded with STARTTLS: set server_starttls = True in ${where} (465 is implicit TLS)${expected}.`,
        ]
      : [
          'The server does not speak TLS on this port.',
          `${server.protocol} upstreams use implicit TLS (IMAP 993, POP3 995): fix server_port in ${where}${expected}.`,
        ];
  }
  if (/refused STARTTLS|after its STARTTLS/i.test(detail)) {
    return [
      'The proxy never logs in over plain text, so it stops here.',
      `Check server_address and server_port in ${where}${expected}; if the port is implicit TLS (465), remove server_starttls.`,
    ];
  }
  if (/ALTNAME|HOSTNAME|hostname/i.test(detail)) {
    return [
      `The certificate is for another host name: server_address in ${where} must be the name on the server's certificate${expected}.`,
    ];
  }
  if (/EXPIRED|NOT_YET_VALID/i.test(detail)) {
    return [
      "The server's certificate is expired or not yet valid: check this machine's clock; if the clock is right, the server's certificate must be renewed.",
    ];
  }
  return [
    "The server's certificate is not trusted by this machine. Verification is never switched off; instead:",
    server.serverCaFile
      ? `server_ca_file = ${server.serverCaFile} is set in ${where}, but it does not hold the CA that signed this server's certificate; point it at that CA (PEM).`
      : `if the server uses a private or self-signed CA, save that CA certificate (PEM) and set server_ca_file = /path/to/ca.pem in ${where}.`,
    'A TLS-intercepting proxy or antivirus on this network causes this too.',
  ];
}

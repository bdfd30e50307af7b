import fc from 'fast-check';
import { hasControlCharacter, loginRuleRefusal } from '../../../src/auth/login-rules.js';
import { pop3Session } from '../../../src/proxy/pop3/session.js';
import {
  expectedOutcome,
  loginName,
  passwordFor,
  type CaseAccounts,
  type LoginOutcome,
} from './accounts.js';
import {
  hostileFragment,
  hostileScript,
  protocolScript,
  send,
  type CompiledCommand,
} from './scripts.js';
import type { ClientAction, ClientScript, Expectation } from './client-script.js';
import type { ProtocolRules } from './protocol-rules.js';
import { pop3OutputViolations } from './wire-grammar.js';

/** POP3 clients in the AUTHORIZATION state (RFC 1939, 2449, 5034, 2595), as the fuzzer writes them. */

export const pop3Rules: ProtocolRules = {
  protocol: 'POP',
  session: pop3Session,
  outputViolations: pop3OutputViolations,
  startTlsGoAhead: /^\+OK Begin TLS/,
  xoauth2In: (line) => /^AUTH XOAUTH2 (\S+)$/.exec(line)?.[1],
  allowedUpstream: (line) => line === '' || line === '*',
};

type Intent =
  | { readonly kind: 'simple'; readonly verb: string }
  | { readonly kind: 'not-yet'; readonly command: string }
  | {
      readonly kind: 'user-pass';
      readonly user: string;
      readonly pass: string;
      readonly username: string;
      readonly password: string;
      readonly interrupted: boolean;
    }
  | { readonly kind: 'pass-alone'; readonly pass: string; readonly password: string }
  | {
      readonly kind: 'auth-plain';
      readonly auth: string;
      readonly username: string;
      readonly password: string;
      readonly authzid: boolean;
      readonly initial: boolean;
    }
  | { readonly kind: 'cancel'; readonly auth: string }
  | { readonly kind: 'malformed'; readonly line: string; readonly continuation: boolean };

const verb = (name: string): fc.Arbitrary<string> => fc.mixedCase(fc.constant(name));

function intent(accounts: CaseAccounts): fc.Arbitrary<Intent> {
  const credentials = loginName.chain((username) =>
    passwordFor(accounts, username).map((password) => ({ username, password })),
  );
  return fc.oneof(
    fc.record({
      kind: fc.constant('simple' as const),
      verb: fc.constantFrom('CAPA', 'AUTH', 'QUIT', 'STLS', 'APOP x 0123456789abcdef').chain(verb),
    }),
    fc.record({
      kind: fc.constant('not-yet' as const),
      command: fc.oneof(
        fc.constantFrom(
          'STAT',
          'LIST',
          'RETR 1',
          'DELE 1',
          'NOOP',
          'RSET',
          'TOP 1 0',
          'UIDL',
          'LAST',
          'XTND XMIT',
        ),
        fc
          .stringMatching(/^[A-Za-z]{1,16}$/)
          .filter(
            (v) =>
              !['CAPA', 'AUTH', 'QUIT', 'STLS', 'APOP', 'USER', 'PASS'].includes(v.toUpperCase()),
          ),
      ),
    }),
    {
      weight: 4,
      arbitrary: fc
        .record({ user: verb('USER'), pass: verb('PASS'), credentials, interrupted: fc.boolean() })
        .map(({ credentials: c, ...rest }) => ({ kind: 'user-pass' as const, ...c, ...rest })),
    },
    fc.record({
      kind: fc.constant('pass-alone' as const),
      pass: verb('PASS'),
      password: fc.constantFrom(...accounts.wrong),
    }),
    {
      weight: 3,
      arbitrary: fc
        .record({ auth: verb('AUTH'), credentials, authzid: fc.boolean(), initial: fc.boolean() })
        .map(({ credentials: c, ...rest }) => ({ kind: 'auth-plain' as const, ...c, ...rest })),
    },
    fc.record({ kind: fc.constant('cancel' as const), auth: verb('AUTH') }),
    fc.oneof(
      fc
        .constantFrom(
          '',
          ' ',
          'USER',
          'USER ',
          'PASS',
          'AUTH CRAM-MD5',
          'AUTH PLAIN a b',
          'AUTH PLAIN !!notbase64',
          'AUTH PLAIN =',
          'AUTH XOAUTH2 dXNlcj0BAQ==',
          'AVERYLONGCOMMANDNAME',
          '1234',
          'USER\tbob',
        )
        .map((line) => ({ kind: 'malformed' as const, line, continuation: false })),
    ),
  );
}

const STATUS = /^(?:\+OK|-ERR)(?: |$)/;
const status = (is: RegExp): Expectation => ({ until: STATUS, is });
const ok = status(/^\+OK/);
const err = status(/^-ERR/);
const MULTI_LINE: Expectation = { until: /^\.$/ };
const CONTINUATION: Expectation = { until: /^\+(?!OK)/, is: /^\+ ?$/ };

function loginAnswer(outcome: LoginOutcome): Expectation {
  if (outcome === 'accepted') return ok;
  if (outcome === 'pending') return status(/^-ERR \[SYS\/TEMP\] /);
  return status(/^-ERR \[AUTH\] /);
}

function compile(
  intents: readonly Intent[],
  accounts: CaseAccounts,
  offersStls: boolean,
): CompiledCommand[] {
  let secure = false;
  return intents.map((i): CompiledCommand => {
    switch (i.kind) {
      case 'simple': {
        const name = i.verb.split(' ')[0]?.toUpperCase();
        if (name === 'CAPA' || name === 'AUTH')
          return { parts: [send(`${i.verb}\r\n`, MULTI_LINE)], ends: false, secrets: [] };
        if (name === 'QUIT') return { parts: [send(`${i.verb}\r\n`, ok)], ends: true, secrets: [] };
        if (name === 'STLS' && offersStls && !secure) {
          secure = true;
          return {
            parts: [send(`${i.verb}\r\n`, ok), { kind: 'starttls' }],
            ends: false,
            secrets: [],
          };
        }
        return { parts: [send(`${i.verb}\r\n`, err)], ends: false, secrets: [] };
      }
      case 'not-yet':
        return { parts: [send(`${i.command}\r\n`, err)], ends: false, secrets: [] };
      case 'user-pass': {
        // The proxy takes the name without the spaces around it (and none with control characters),
        // and the password exactly as sent.
        const username = hasControlCharacter(i.username) ? '' : i.username.trim();
        const pass = (expect: Expectation): ClientAction =>
          send(`${i.pass} ${i.password}\r\n`, expect);
        if (username === '') {
          return {
            parts: [send(`${i.user} ${i.username}\r\n`, err), pass(err)],
            ends: false,
            secrets: [],
          };
        }
        if (i.interrupted) {
          // RFC 1939: PASS must come right after USER; a CAPA in between forgets the name.
          return {
            parts: [
              send(`${i.user} ${i.username}\r\n`, ok),
              send('CAPA\r\n', MULTI_LINE),
              pass(err),
            ],
            ends: false,
            secrets: [],
          };
        }
        const outcome = expectedOutcome(accounts, username, i.password);
        return {
          parts: [send(`${i.user} ${i.username}\r\n`, ok), pass(loginAnswer(outcome))],
          login: { username, password: i.password },
          ends: outcome === 'accepted',
          secrets: [],
        };
      }
      case 'pass-alone':
        return { parts: [send(`${i.pass} ${i.password}\r\n`, err)], ends: false, secrets: [] };
      case 'auth-plain': {
        const blob = Buffer.from(
          `${i.authzid ? i.username : ''}\0${i.username}\0${i.password}`,
          'utf8',
        ).toString('base64');
        const outcome = expectedOutcome(accounts, i.username, i.password);
        // A login that breaks the login rules is refused before the authenticator is asked.
        const login = { username: i.username, password: i.password };
        const parts = i.initial
          ? [send(`${i.auth} PLAIN ${blob}\r\n`, loginAnswer(outcome))]
          : [send(`${i.auth} PLAIN\r\n`, CONTINUATION), send(`${blob}\r\n`, loginAnswer(outcome))];
        return {
          parts,
          ...(loginRuleRefusal(login) ? {} : { login }),
          ends: outcome === 'accepted',
          secrets: [blob],
        };
      }
      case 'cancel':
        return {
          parts: [send(`${i.auth} PLAIN\r\n`, CONTINUATION), send('*\r\n', err)],
          ends: false,
          secrets: [],
        };
      case 'malformed':
        return { parts: [send(`${i.line}\r\n`, err)], ends: false, secrets: [] };
    }
  });
}

function commands(
  accounts: CaseAccounts,
  offersStls: boolean,
): fc.Arbitrary<readonly CompiledCommand[]> {
  return fc
    .array(intent(accounts), { minLength: 1, maxLength: 8 })
    .map((intents) => compile(intents, accounts, offersStls));
}

/** A POP3 client that follows the protocol, waiting for each answer. */
export function pop3Conversation(
  accounts: CaseAccounts,
  offersStls: boolean,
): fc.Arbitrary<ClientScript> {
  return protocolScript(commands(accounts, offersStls));
}

/** POP3-specific junk: overlong lines and SASL responses, STLS misuse, floods of commands. */
const pop3Junk = fc.oneof(
  fc.constantFrom(
    'AUTH PLAIN\r\n',
    'AUTH PLAIN\r\n=\r\n',
    'USER a\r\nUSER b\r\nPASS c\r\n',
    'STLS\r\nCAPA\r\n',
    'STLS\r\n\x16\x03\x01\x00\x05hello',
    'PASS\r\n',
    'USER \0\r\n',
    'USER a\rPASS b\r\n',
    '\xff\xfe\r\n',
    'AUTH\r\nAUTH PLAIN\r\n',
  ),
  fc.integer({ min: 8 * 1024 - 8, max: 8 * 1024 + 8 }).map((n) => `USER ${'x'.repeat(n)}\r\n`),
  fc
    .integer({ min: 8 * 1024 - 8, max: 8 * 1024 + 8 })
    .map((n) => `AUTH PLAIN\r\n${'A'.repeat(n)}\r\n`),
  fc.integer({ min: 45, max: 60 }).map((n) => 'CAPA\r\n'.repeat(n)),
);

/** A POP3 client that is broken or hostile. */
export function hostilePop3Conversation(
  accounts: CaseAccounts,
  offersStls: boolean,
): fc.Arbitrary<ClientScript> {
  return hostileScript(commands(accounts, offersStls), hostileFragment(pop3Junk));
}

import fc from 'fast-check';
import { loginRuleRefusal } from '../../../src/auth/login-rules.js';
import { smtpSession } from '../../../src/proxy/smtp/session.js';
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
import { smtpOutputViolations } from './wire-grammar.js';

/** SMTP submission clients before AUTH (RFC 5321, 4954, 3207), as the fuzzer writes them. */

export const smtpRules: ProtocolRules = {
  protocol: 'SMTP',
  session: smtpSession,
  outputViolations: smtpOutputViolations,
  startTlsGoAhead: /^220 2\.0\.0 Ready to start TLS/,
  xoauth2In: (line) => /^AUTH XOAUTH2 (\S+)$/.exec(line)?.[1],
  // The client's EHLO / HELO goes upstream by design; as one command line of a domain's length, nothing more.
  allowedUpstream: (line) =>
    line === '' ||
    line === '*' ||
    line === 'QUIT' ||
    (/^(?:EHLO|HELO) [\x20-\x7e\u0080-\u{10ffff}]+$/u.test(line) &&
      Buffer.byteLength(line) <= 5 + 255),
};

type Intent =
  | { readonly kind: 'hello'; readonly verb: string; readonly name: string }
  | { readonly kind: 'simple'; readonly verb: string }
  | {
      readonly kind: 'plain';
      readonly auth: string;
      readonly username: string;
      readonly password: string;
      readonly authzid: boolean;
      readonly initial: boolean;
    }
  | {
      readonly kind: 'login';
      readonly auth: string;
      readonly username: string;
      readonly password: string;
      readonly initial: boolean;
    }
  | { readonly kind: 'cancel'; readonly mechanism: 'PLAIN' | 'LOGIN' }
  | { readonly kind: 'auth-error'; readonly line: string; readonly code: string }
  | { readonly kind: 'transaction'; readonly line: string };

const verb = (name: string): fc.Arbitrary<string> => fc.mixedCase(fc.constant(name));
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

const clientName = fc.oneof(
  fc.constantFrom('mutt.local', 'localhost', '[127.0.0.1]', '[IPv6:::1]', 'laptop', 'msmtp'),
  fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/),
);

function intent(accounts: CaseAccounts): fc.Arbitrary<Intent> {
  const credentials = loginName.chain((username) =>
    passwordFor(accounts, username).map((password) => ({ username, password })),
  );
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('hello' as const),
        verb: fc.constantFrom('EHLO', 'EHLO', 'HELO').chain(verb),
        name: clientName,
      }),
    },
    fc.record({
      kind: fc.constant('simple' as const),
      verb: fc
        .constantFrom(
          'NOOP',
          'RSET',
          'QUIT',
          'STARTTLS',
          'VRFY postmaster',
          'HELP',
          'EXPN list',
          'ETRN x',
          'XYZZY',
          'EHLO',
          'AUTH',
        )
        .chain(verb),
    }),
    {
      weight: 4,
      arbitrary: fc
        .record({ auth: verb('AUTH'), credentials, authzid: fc.boolean(), initial: fc.boolean() })
        .map(({ credentials: c, ...rest }) => ({ kind: 'plain' as const, ...c, ...rest })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ auth: verb('AUTH'), credentials, initial: fc.boolean() })
        .map(({ credentials: c, ...rest }) => ({ kind: 'login' as const, ...c, ...rest })),
    },
    fc.record({
      kind: fc.constant('cancel' as const),
      mechanism: fc.constantFrom('PLAIN' as const, 'LOGIN' as const),
    }),
    fc
      .constantFrom(
        { line: 'AUTH CRAM-MD5', code: '504' },
        { line: 'AUTH XOAUTH2 dXNlcj0BAQ==', code: '504' },
        { line: 'AUTH PLAIN =', code: '501' },
        { line: 'AUTH PLAIN !!notbase64', code: '501' },
        { line: 'AUTH PLAIN a b', code: '501' },
        { line: 'AUTH LOGIN =', code: '501' },
      )
      .map((e) => ({ kind: 'auth-error' as const, ...e })),
    fc
      .constantFrom(
        'MAIL FROM:<alice@example.com>',
        'mail from:<>',
        'RCPT TO:<bob@example.com>',
        'DATA',
        'BDAT 5 LAST',
      )
      .map((line) => ({ kind: 'transaction' as const, line })),
  );
}

/** The last line of a reply, and what its code must be. */
const reply = (code: string): Expectation => ({
  until: /^\d{3}(?: |$)/,
  is: new RegExp(`^${code}(?: |$)`),
});

function loginAnswer(outcome: LoginOutcome): Expectation {
  if (outcome === 'accepted') return reply('235');
  if (outcome === 'pending') return reply('454');
  return reply('535');
}

function compile(
  intents: readonly Intent[],
  accounts: CaseAccounts,
  offersStartTls: boolean,
): CompiledCommand[] {
  let greeted: 'none' | 'HELO' | 'EHLO' = 'none';
  let secure = false;
  /** AUTH is only taken after EHLO; before, the proxy says 503 and reads no SASL exchange. */
  const authenticate = (
    command: string,
    exchange: readonly ClientAction[],
    answer: Expectation,
  ): ClientAction[] =>
    greeted === 'EHLO'
      ? [send(command, exchange.length > 0 ? reply('334') : answer), ...exchange]
      : [send(command, reply('503'))];

  return intents.map((i): CompiledCommand => {
    switch (i.kind) {
      case 'hello':
        greeted = i.verb.toUpperCase() as 'HELO' | 'EHLO';
        return { parts: [send(`${i.verb} ${i.name}\r\n`, reply('250'))], ends: false, secrets: [] };
      case 'simple': {
        const name = i.verb.split(' ')[0]?.toUpperCase();
        const line = `${i.verb}\r\n`;
        if (name === 'NOOP' || name === 'RSET')
          return { parts: [send(line, reply('250'))], ends: false, secrets: [] };
        if (name === 'QUIT') return { parts: [send(line, reply('221'))], ends: true, secrets: [] };
        if (name === 'EHLO' || name === 'AUTH')
          return {
            parts: [send(line, reply(name === 'AUTH' && greeted !== 'EHLO' ? '503' : '501'))],
            ends: false,
            secrets: [],
          };
        if (name === 'STARTTLS') {
          if (secure) return { parts: [send(line, reply('503'))], ends: false, secrets: [] };
          if (!offersStartTls)
            return { parts: [send(line, reply('502'))], ends: false, secrets: [] };
          secure = true;
          greeted = 'none';
          return {
            parts: [send(line, reply('220')), { kind: 'starttls' }],
            ends: false,
            secrets: [],
          };
        }
        return { parts: [send(line, reply('502'))], ends: false, secrets: [] };
      }
      case 'plain': {
        const blob = b64(`${i.authzid ? i.username : ''}\0${i.username}\0${i.password}`);
        const answer = loginAnswer(expectedOutcome(accounts, i.username, i.password));
        const parts = i.initial
          ? authenticate(`${i.auth} PLAIN ${blob}\r\n`, [], answer)
          : authenticate(`${i.auth} PLAIN\r\n`, [send(`${blob}\r\n`, answer)], answer);
        return compiledLogin(parts, greeted, accounts, i.username, i.password, [blob]);
      }
      case 'login': {
        const [user, pass] = [b64(i.username), b64(i.password)];
        const answer = loginAnswer(expectedOutcome(accounts, i.username, i.password));
        const parts = i.initial
          ? authenticate(`${i.auth} LOGIN ${user}\r\n`, [send(`${pass}\r\n`, answer)], answer)
          : authenticate(
              `${i.auth} LOGIN\r\n`,
              [send(`${user}\r\n`, reply('334')), send(`${pass}\r\n`, answer)],
              answer,
            );
        return compiledLogin(parts, greeted, accounts, i.username, i.password, [pass]);
      }
      case 'cancel':
        return {
          parts: authenticate(
            `AUTH ${i.mechanism}\r\n`,
            [send('*\r\n', reply('501'))],
            reply('501'),
          ),
          ends: false,
          secrets: [],
        };
      case 'auth-error':
        return {
          parts: [send(`${i.line}\r\n`, reply(greeted === 'EHLO' ? i.code : '503'))],
          ends: false,
          secrets: [],
        };
      case 'transaction':
        // The client goes on without logging in: the server answers it from now on.
        return { parts: [send(`${i.line}\r\n`, reply('530'))], ends: true, secrets: [] };
    }
  });
}

function compiledLogin(
  parts: ClientAction[],
  greeted: 'none' | 'HELO' | 'EHLO',
  accounts: CaseAccounts,
  username: string,
  password: string,
  secrets: string[],
): CompiledCommand {
  if (greeted !== 'EHLO') return { parts, ends: false, secrets };
  // A login that breaks the login rules is refused before the authenticator is asked.
  const login = loginRuleRefusal({ username, password }) ? {} : { login: { username, password } };
  return {
    parts,
    ...login,
    ends: expectedOutcome(accounts, username, password) === 'accepted',
    secrets,
  };
}

/** Most clients say EHLO first; without it AUTH is refused, which the rest of the list also tries. */
const opening: fc.Arbitrary<readonly Intent[]> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({ kind: fc.constant('hello' as const), verb: verb('EHLO'), name: clientName })
      .map((hello) => [hello]),
  },
  fc.constant([]),
);

function commands(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<readonly CompiledCommand[]> {
  return fc
    .tuple(opening, fc.array(intent(accounts), { minLength: 1, maxLength: 8 }))
    .map(([first, rest]) => compile([...first, ...rest], accounts, offersStartTls));
}

/** An SMTP client that follows the protocol, waiting for each answer. */
export function smtpConversation(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<ClientScript> {
  return protocolScript(commands(accounts, offersStartTls));
}

/** SMTP-specific junk: smuggled line ends in EHLO, overlong lines and SASL responses, floods of commands. */
const smtpJunk = fc.oneof(
  fc.constantFrom(
    'EHLO x\rMAIL FROM:<a@b>\r\n',
    'EHLO x\0y\r\n',
    'EHLO \x1b[2J\r\n',
    'HELO a\nb\r\n',
    'AUTH PLAIN\r\n',
    'EHLO x\r\nAUTH LOGIN\r\n',
    'EHLO x\r\nAUTH LOGIN\r\n=\r\n',
    'STARTTLS\r\nNOOP\r\n',
    'STARTTLS\r\n\x16\x03\x01\x00\x05hello',
    'BDAT 999999999 LAST\r\n',
    'MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n',
    '\xff\xfe\r\n',
  ),
  fc.integer({ min: 8 * 1024 - 8, max: 8 * 1024 + 8 }).map((n) => `EHLO ${'x'.repeat(n)}\r\n`),
  fc.integer({ min: 1, max: 600 }).map((n) => `EHLO ${'a'.repeat(n)}\r\n`),
  fc
    .integer({ min: 8 * 1024 - 8, max: 8 * 1024 + 8 })
    .map((n) => `EHLO x\r\nAUTH PLAIN\r\n${'A'.repeat(n)}\r\n`),
  fc.integer({ min: 100, max: 4000 }).map((n) => `NOOP a${' \t'.repeat(n)}b\r\n`),
  fc.integer({ min: 45, max: 60 }).map((n) => 'NOOP\r\n'.repeat(n)),
);

/** An SMTP client that is broken or hostile. */
export function hostileSmtpConversation(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<ClientScript> {
  return hostileScript(commands(accounts, offersStartTls), hostileFragment(smtpJunk));
}

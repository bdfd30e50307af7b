import fc from 'fast-check';
import { loginRuleRefusal } from '../../../src/auth/login-rules.js';
import { imapSession } from '../../../src/proxy/imap/session.js';
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
  literally,
  protocolScript,
  send,
  type CompiledCommand,
} from './scripts.js';
import type { ClientAction, ClientScript, Expectation } from './client-script.js';
import type { ProtocolRules } from './protocol-rules.js';
import { imapOutputViolations } from './wire-grammar.js';

/** IMAP clients before login (RFC 9051 / 3501), as the fuzzer writes them. */

export const imapRules: ProtocolRules = {
  protocol: 'IMAP',
  session: imapSession,
  outputViolations: imapOutputViolations,
  startTlsGoAhead: /^\S+ OK Begin TLS/,
  xoauth2In: (line) => /^P1 AUTHENTICATE XOAUTH2 (\S+)$/.exec(line)?.[1],
  allowedUpstream: (line) => line === '' || line === '*',
};

/** How a client writes a string argument. */
type AstringForm = 'atom' | 'quoted' | 'literal' | 'literal+';

type Intent =
  | { readonly kind: 'simple'; readonly tag: string; readonly verb: string }
  | { readonly kind: 'not-yet'; readonly tag: string; readonly command: string }
  | {
      readonly kind: 'login';
      readonly tag: string;
      readonly verb: string;
      readonly username: string;
      readonly password: string;
      readonly forms: readonly [AstringForm, AstringForm];
    }
  | {
      readonly kind: 'authenticate';
      readonly tag: string;
      readonly username: string;
      readonly password: string;
      readonly authzid: boolean;
      readonly initial: boolean;
    }
  | { readonly kind: 'cancel'; readonly tag: string }
  | { readonly kind: 'mechanism'; readonly tag: string; readonly mechanism: string }
  | {
      readonly kind: 'malformed';
      readonly tag: string;
      readonly line: string;
      readonly untagged: boolean;
    }
  | { readonly kind: 'too-big'; readonly tag: string; readonly size: number };

/** ASTRING-CHARs except "+" (RFC 9051 tag). */
const TAG_CHARS =
  "!#$&',-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz|}~";
export const tag = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z][0-9]{1,4}$/) },
  fc.string({ unit: fc.constantFrom(...TAG_CHARS), minLength: 1, maxLength: 8 }),
);

const ATOM = /^[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+$/;
const astringForm = fc.constantFrom<AstringForm>('atom', 'quoted', 'literal', 'literal+');
const verb = (name: string): fc.Arbitrary<string> => fc.mixedCase(fc.constant(name));

function intent(accounts: CaseAccounts): fc.Arbitrary<Intent> {
  const credentials = loginName.chain((username) =>
    passwordFor(accounts, username).map((password) => ({ username, password })),
  );
  return fc.oneof(
    fc.record({
      kind: fc.constant('simple' as const),
      tag,
      verb: fc.constantFrom('CAPABILITY', 'NOOP', 'ID', 'LOGOUT', 'STARTTLS').chain(verb),
    }),
    fc.record({
      kind: fc.constant('not-yet' as const),
      tag,
      command: fc.oneof(
        fc.constantFrom(
          'SELECT INBOX',
          'EXAMINE "Sent Items"',
          'FETCH 1:* (FLAGS)',
          'LIST "" *',
          'IDLE',
          'ENABLE UTF8=ACCEPT',
          'UID FETCH 1 BODY[]',
          'XYZZY',
        ),
        fc
          .stringMatching(/^[A-Za-z]{1,12}$/)
          .filter(
            (v) =>
              !['CAPABILITY', 'NOOP', 'ID', 'LOGOUT', 'STARTTLS', 'LOGIN', 'AUTHENTICATE'].includes(
                v.toUpperCase(),
              ),
          ),
      ),
    }),
    {
      weight: 4,
      arbitrary: fc
        .record({
          tag,
          verb: verb('LOGIN'),
          credentials,
          forms: fc.tuple(astringForm, astringForm),
        })
        .map(({ credentials: c, ...rest }) => ({ kind: 'login' as const, ...c, ...rest })),
    },
    {
      weight: 3,
      arbitrary: fc
        .record({ tag, credentials, authzid: fc.boolean(), initial: fc.boolean() })
        .map(({ credentials: c, ...rest }) => ({ kind: 'authenticate' as const, ...c, ...rest })),
    },
    fc.record({ kind: fc.constant('cancel' as const), tag }),
    fc.record({
      kind: fc.constant('mechanism' as const),
      tag,
      mechanism: fc.constantFrom('CRAM-MD5', 'XOAUTH2', 'LOGIN', 'OAUTHBEARER', 'GSSAPI'),
    }),
    tag.chain((t) =>
      fc.oneof(
        fc
          .constantFrom(
            `${t} LOGIN onlyuser`,
            `${t} LOGIN "unterminated`,
            `${t} LOGIN a b c`,
            `${t} LOGIN "a\\x" b`,
            `${t}`,
            `${t} AUTHENTICATE PLAIN !!notbase64`,
            `${t} AUTHENTICATE PLAIN =`,
            `${t} AUTHENTICATE PLAIN AGFAYg`,
          )
          .map((line) => ({ kind: 'malformed' as const, tag: t, line, untagged: false })),
        fc
          .constantFrom('', ' ', '+ x', '* NOOP', '(a) NOOP')
          .map((line) => ({ kind: 'malformed' as const, tag: t, line, untagged: true })),
      ),
    ),
    fc.record({
      kind: fc.constant('too-big' as const),
      tag,
      size: fc.constantFrom(16 * 1024 + 1, 65536, 999_999_999, 4_294_967_295),
    }),
  );
}

/** A tagged final answer of `tag`, and what the model says it must be. */
function tagged(t: string, is: string): Expectation {
  return {
    until: new RegExp(`^${literally(t)} (?:OK|NO|BAD)(?: |$)`),
    is: new RegExp(`^${literally(t)} ${is}`),
  };
}

const CONTINUATION: Expectation = { until: /^\+/, is: /^\+/ };

function loginAnswer(outcome: LoginOutcome): string {
  if (outcome === 'accepted') return 'OK ';
  if (outcome === 'pending') return 'NO \\[UNAVAILABLE\\] ';
  return 'NO \\[AUTHENTICATIONFAILED\\] ';
}

/**
 * An astring in the requested form (atom and quoted only where the value allows them), as the
 * parts it takes: a synchronizing literal waits for the server's `+` before its bytes.
 */
function writeAstring(
  value: string,
  form: AstringForm,
  parts: ClientAction[],
  pending: Buffer[],
): void {
  const bytes = Buffer.from(value, 'utf8');
  if (form === 'atom' && ATOM.test(value)) {
    pending.push(bytes);
  } else if (form === 'quoted' || form === 'atom') {
    pending.push(Buffer.from(`"${value.replace(/[\\"]/g, '\\$&')}"`, 'utf8'));
  } else if (form === 'literal+') {
    pending.push(Buffer.from(`{${bytes.length}+}\r\n`), bytes);
  } else {
    pending.push(Buffer.from(`{${bytes.length}}\r\n`));
    parts.push(send(Buffer.concat(pending.splice(0)), CONTINUATION));
    pending.push(bytes);
  }
}

/** The login the authenticator sees: none for one that breaks the login rules, which the proxy refuses first. */
function lookedUp(username: string, password: string): Pick<CompiledCommand, 'login'> {
  return loginRuleRefusal({ username, password }) ? {} : { login: { username, password } };
}

function compile(
  intents: readonly Intent[],
  accounts: CaseAccounts,
  offersStartTls: boolean,
): CompiledCommand[] {
  let secure = false;
  return intents.map((i): CompiledCommand => {
    const t = i.tag;
    switch (i.kind) {
      case 'simple': {
        const name = i.verb.toUpperCase();
        const line = name === 'ID' ? `${t} ${i.verb} ("name" "fuzz")\r\n` : `${t} ${i.verb}\r\n`;
        if (name === 'STARTTLS') {
          if (!offersStartTls || secure)
            return { parts: [send(line, tagged(t, 'BAD'))], ends: false, secrets: [] };
          secure = true;
          return {
            parts: [send(line, tagged(t, 'OK')), { kind: 'starttls' }],
            ends: false,
            secrets: [],
          };
        }
        return { parts: [send(line, tagged(t, 'OK'))], ends: name === 'LOGOUT', secrets: [] };
      }
      case 'not-yet':
        return {
          parts: [send(`${t} ${i.command}\r\n`, tagged(t, 'BAD'))],
          ends: false,
          secrets: [],
        };
      case 'login': {
        const parts: ClientAction[] = [];
        const pending: Buffer[] = [Buffer.from(`${t} ${i.verb} `)];
        writeAstring(i.username, i.forms[0], parts, pending);
        pending.push(Buffer.from(' '));
        writeAstring(i.password, i.forms[1], parts, pending);
        pending.push(Buffer.from('\r\n'));
        const outcome = expectedOutcome(accounts, i.username, i.password);
        parts.push(send(Buffer.concat(pending), tagged(t, loginAnswer(outcome))));
        return {
          parts,
          ...lookedUp(i.username, i.password),
          ends: outcome === 'accepted',
          secrets: [],
        };
      }
      case 'authenticate': {
        const blob = Buffer.from(
          `${i.authzid ? i.username : ''}\0${i.username}\0${i.password}`,
          'utf8',
        ).toString('base64');
        const outcome = expectedOutcome(accounts, i.username, i.password);
        const answer = tagged(t, loginAnswer(outcome));
        const parts = i.initial
          ? [send(`${t} AUTHENTICATE PLAIN ${blob}\r\n`, answer)]
          : [send(`${t} AUTHENTICATE PLAIN\r\n`, CONTINUATION), send(`${blob}\r\n`, answer)];
        return {
          parts,
          ...lookedUp(i.username, i.password),
          ends: outcome === 'accepted',
          secrets: [blob],
        };
      }
      case 'cancel':
        return {
          parts: [
            send(`${t} AUTHENTICATE PLAIN\r\n`, CONTINUATION),
            send('*\r\n', tagged(t, 'BAD')),
          ],
          ends: false,
          secrets: [],
        };
      case 'mechanism':
        return {
          parts: [send(`${t} AUTHENTICATE ${i.mechanism}\r\n`, tagged(t, 'NO'))],
          ends: false,
          secrets: [],
        };
      case 'malformed':
        return {
          parts: [
            send(`${i.line}\r\n`, i.untagged ? { until: /^\* BAD/ } : tagged(t, '(?:BAD|NO)')),
          ],
          ends: false,
          secrets: [],
        };
      case 'too-big':
        return {
          parts: [send(`${t} LOGIN {${i.size}}\r\n`, tagged(t, 'NO \\[TOOBIG\\]'))],
          ends: false,
          secrets: [],
        };
    }
  });
}

function commands(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<readonly CompiledCommand[]> {
  return fc
    .array(intent(accounts), { minLength: 1, maxLength: 8 })
    .map((intents) => compile(intents, accounts, offersStartTls));
}

/** An IMAP client that follows the protocol, waiting for each answer. */
export function imapConversation(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<ClientScript> {
  return protocolScript(commands(accounts, offersStartTls));
}

/** IMAP-specific junk: literal counts of every size, overlong lines, STARTTLS misuse, floods of commands. */
const imapJunk = fc.oneof(
  fc.constantFrom(
    'a LOGIN {999999999}\r\n',
    'a LOGIN {999999999+}\r\n',
    'a LOGIN {4294967296}\r\n',
    'a LOGIN {9999999999+}\r\n',
    'a LOGIN {99999999999}\r\n',
    'a LOGIN {18446744073709551616+}\r\n',
    'a LOGIN {-1}\r\n',
    'a LOGIN {1e9}\r\n',
    'a LOGIN { 5}\r\n',
    'a LOGIN {16384+}\r\n',
    'a LOGIN {16385+}\r\n',
    'a LOGIN {5+}\r\nab',
    'a LOGIN "x\\',
    'a AUTHENTICATE PLAIN\r\n',
    'a AUTHENTICATE PLAIN\r\n*\r\n',
    'a STARTTLS\r\nb NOOP\r\n',
    'a STARTTLS\r\n\x16\x03\x01\x00\x05hello',
    '\x01 NOOP\r\n',
    '\x1b[31m NOOP\r\n',
    'a\xff NOOP\r\n',
    '\0\0\0\r\n',
    'a ID ({3+}\r\nabc {3+}\r\nabc)\r\n',
  ),
  fc.integer({ min: 8 * 1024 - 8, max: 8 * 1024 + 8 }).map((n) => `a NOOP ${'x'.repeat(n)}\r\n`),
  fc.integer({ min: 45, max: 60 }).map((n) => 'a NOOP\r\n'.repeat(n)),
  fc.integer({ min: 1, max: 200 }).map((n) => `a ID (${'{0+}\r\n '.repeat(n)})\r\n`),
  fc
    .integer({ min: 1, max: 40 })
    .map((n) => `a LOGIN ${'{1000+}\r\n'.concat('y'.repeat(1000), ' ').repeat(n)}\r\n`),
);

/** An IMAP client that is broken or hostile. */
export function hostileImapConversation(
  accounts: CaseAccounts,
  offersStartTls: boolean,
): fc.Arbitrary<ClientScript> {
  return hostileScript(commands(accounts, offersStartTls), hostileFragment(imapJunk));
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64,
  decodePlain,
  describeXoauth2Challenge,
  encodeXoauth2,
} from '../../src/proxy/sasl.js';
import { readClientCredentials, type AuthExchange } from '../../src/proxy/smtp/auth-exchange.js';
import { decodeXoauth2 } from './support/fuzz-upstream.js';
import { check, runsFor, timeoutFor } from './support/runs.js';
import { quickestRun, repetitiveLine, within } from './support/timing.js';

/**
 * The SASL pieces: what password clients send (PLAIN, LOGIN) is decoded strictly, so only
 * well-formed credentials ever reach the authenticator, and what goes upstream (XOAUTH2) is
 * always exactly the documented format.
 */

const runs = runsFor('parser', 1000);

/** Text without NUL, of every kind of character. */
const text = fc
  .string({
    unit: fc.oneof(
      fc.constantFrom(
        'a',
        'Z',
        '9',
        ' ',
        '\t',
        '\r',
        '\n',
        '=',
        '+',
        '/',
        'é',
        '😀',
        '\x01',
        '\x7f',
      ),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
    ),
    maxLength: 24,
  })
  .map((s) => s.replaceAll('\0', ''));
const nonEmpty = text.filter((s) => s !== '');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** Strings around base64: valid, almost valid, and anything. */
const base64ish = fc.oneof(
  nonEmpty.map(b64),
  fc
    .tuple(
      nonEmpty.map(b64),
      fc.constantFrom(' ', '\t', '=', '==', '===', '\r', '!', '-', '_', 'A', ''),
    )
    .map(([b, junk]) => `${junk}${b}${junk}`),
  fc.string({ unit: fc.constantFrom(...'ABCDabcd0189+/=-_ \t\r\n!*'), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

describe('SASL decoding, fuzzed', () => {
  it(
    'decodes every PLAIN response a client can write, with or without an authorisation identity',
    async () => {
      await check(
        'PLAIN round trip',
        fc.property(
          nonEmpty,
          nonEmpty,
          fc.boolean(),
          fc.constantFrom('', ' ', '\t', '  '),
          (username, password, authzid, space) => {
            const response = `${space}${b64(`${authzid ? username : ''}\0${username}\0${password}`)}${space}`;
            expect(decodePlain(response)).toEqual({ username, password });
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'turns down anything else without throwing: only well-formed credentials come out',
    async () => {
      await check(
        'PLAIN and base64 on anything',
        fc.property(base64ish, (input) => {
          const bytes = decodeBase64(input);
          if (bytes !== undefined) {
            expect(input.trim().length % 4).toBe(0);
            expect(input.trim()).toMatch(BASE64);
          }
          const credentials = decodePlain(input);
          if (credentials === undefined) return;
          expect(bytes).toBeDefined();
          const [authzid, ...rest] = (bytes ?? Buffer.alloc(0)).toString('utf8').split('\0');
          expect(rest).toEqual([credentials.username, credentials.password]);
          expect(['', credentials.username]).toContain(authzid);
          expect(credentials.username).not.toBe('');
          expect(credentials.password).not.toBe('');
        }),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'writes XOAUTH2 exactly as documented, and reads any error challenge without throwing',
    async () => {
      await check(
        'XOAUTH2 both ways',
        fc.property(
          nonEmpty.filter((s) => !s.includes('\x01')),
          nonEmpty.filter((s) => !s.includes('\x01')),
          base64ish,
          (user, token, challenge) => {
            expect(decodeXoauth2(encodeXoauth2(user, token))).toEqual({ user, token });
            expect(describeXoauth2Challenge(challenge)).toMatch(/^the server rejected the token/);
            expect(
              describeXoauth2Challenge(b64(`{"status":${JSON.stringify(challenge)}}`)),
            ).toMatch(/^the server rejected the token/);
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'decodes lines of the longest allowed length in linear time',
    async () => {
      await check(
        'SASL decoding timing',
        fc.asyncProperty(repetitiveLine(''), async (line) => {
          expect(await quickestRun(() => decodePlain(line))).toBeLessThan(25);
        }),
        Math.ceil(runs / 20),
      );
    },
    timeoutFor(runs, 5),
  );
});

/** One answer a client gives to a `334`: a line, or a close. */
const answer = fc.oneof(base64ish, fc.constantFrom('*', '=', '', null), nonEmpty.map(b64));

describe('SMTP AUTH exchange, fuzzed', () => {
  it(
    'asks at most twice, never throws, and yields credentials only when both parts were well-formed',
    async () => {
      await check(
        'SMTP AUTH exchange',
        fc.asyncProperty(
          fc.oneof(
            fc.constantFrom('PLAIN', 'LOGIN', 'plain', 'Login', 'XOAUTH2', 'CRAM-MD5', ''),
            fc.string({ maxLength: 8 }),
          ),
          fc.option(base64ish, { nil: undefined }),
          fc.array(answer, { maxLength: 4 }),
          async (mechanism, initial, answers) => {
            const challenges: string[] = [];
            let next = 0;
            const exchange: AuthExchange = await within(1_000, 'the AUTH exchange', () =>
              readClientCredentials(mechanism, initial, {
                challenge: (base64) => challenges.push(base64),
                // A client that has run out of answers has gone.
                readResponse: () => Promise.resolve(answers[next++] ?? null),
              }),
            );
            expect(challenges.length).toBeLessThanOrEqual(2);
            for (const c of challenges) expect(c).toMatch(BASE64);
            if (exchange.kind === 'credentials') {
              expect(exchange.credentials.username).not.toBe('');
              expect(exchange.credentials.password).not.toBe('');
              expect(['PLAIN', 'LOGIN']).toContain(mechanism.toUpperCase());
            }
            if (!['PLAIN', 'LOGIN'].includes(mechanism.toUpperCase()))
              expect(exchange.kind).toBe('unsupported-mechanism');
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 2),
  );
});

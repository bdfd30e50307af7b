import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineReader, LineTooLongError } from '../../src/proxy/line-reader.js';
import { parsePop3Command, userName } from '../../src/proxy/pop3/command.js';
import { capabilityList, errReply, mechanismList, okReply } from '../../src/proxy/pop3/replies.js';
import { oneLine } from '../../src/proxy/reply-text.js';
import { parseSmtpCommand } from '../../src/proxy/smtp/command.js';
import { rewriteEhloReply } from '../../src/proxy/smtp/ehlo.js';
import {
  formatReply,
  readSmtpReply,
  SmtpReplySyntaxError,
  type SmtpReply,
} from '../../src/proxy/smtp/reply.js';
import { anyByte } from './support/bytes.js';
import { check, runsFor, timeoutFor } from './support/runs.js';
import { feed } from './support/streams.js';
import { quickestRun, repetitiveLine, within } from './support/timing.js';
import { pop3OutputViolations, smtpOutputViolations } from './support/wire-grammar.js';

/**
 * The line-level parsers and formatters of POP3 and SMTP: client command lines split the same way
 * whatever they hold, in linear time; upstream SMTP replies read back as written and anything
 * else is refused; what the proxy writes is valid for the protocol.
 */

const runs = runsFor('parser', 1000);

/** A line as a client may send it: no LF (the reader splits there), anything else. */
const line = fc.oneof(
  fc.string({
    unit: fc.constantFrom(
      'A',
      'u',
      's',
      'E',
      'R',
      ' ',
      '\t',
      '\r',
      '\0',
      ':',
      '<',
      '>',
      '@',
      'é',
      '\x1b',
    ),
    maxLength: 40,
  }),
  fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replaceAll('\n', '')),
);
const word = fc.stringMatching(/^[A-Za-z]{1,16}$/);
const textWithoutLineBreaks = fc
  .string({ unit: 'binary', maxLength: 60 })
  .map((s) => s.replace(/[\r\n]/g, ''));

describe('POP3 commands, fuzzed', () => {
  it(
    'splits any line into a keyword and its untouched argument, or refuses it',
    async () => {
      await check(
        'POP3 command parser',
        fc.property(line, (text) => {
          const command = parsePop3Command(text);
          if (command === undefined) return;
          expect(command.verb).toMatch(/^[A-Z]{1,16}$/);
          expect(command.verb).toBe(text.slice(0, command.verb.length).toUpperCase());
          expect(
            command.argument === undefined ? text.length : text.slice(command.verb.length + 1),
          ).toEqual(command.argument ?? command.verb.length);
          const name = userName(command.argument);
          if (name !== undefined) expect(name).not.toMatch(/^\s|\s$|[\x00-\x1f\x7f]/);
        }),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'reads every keyword and argument back as written',
    async () => {
      await check(
        'POP3 command round trip',
        fc.property(
          word,
          fc.option(textWithoutLineBreaks, { nil: undefined }),
          (verb, argument) => {
            expect(parsePop3Command(argument === undefined ? verb : `${verb} ${argument}`)).toEqual(
              { verb: verb.toUpperCase(), argument },
            );
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'writes only valid status lines and multi-line replies',
    async () => {
      await check(
        'POP3 replies',
        fc.property(
          textWithoutLineBreaks,
          fc.string({ unit: 'grapheme', maxLength: 600 }),
          fc.boolean(),
          (a, b, tls) => {
            const output = Buffer.from(
              okReply('ready') +
                okReply(a) +
                errReply(b) +
                capabilityList(tls) +
                mechanismList() +
                okReply(),
            );
            expect(pop3OutputViolations(output, { complete: true })).toEqual([]);
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'parses lines of the longest allowed length in linear time',
    async () => {
      await check(
        'POP3 parser timing',
        fc.asyncProperty(
          fc.constantFrom('USER ', 'PASS ', 'AUTH ', '').chain(repetitiveLine),
          async (text) => {
            expect(
              await quickestRun(() => userName(parsePop3Command(text)?.argument)),
            ).toBeLessThan(25);
          },
        ),
        Math.ceil(runs / 20),
      );
    },
    timeoutFor(runs, 5),
  );
});

describe('SMTP commands and replies, fuzzed', () => {
  it(
    'splits any line into a verb and the rest as the reference does',
    async () => {
      await check(
        'SMTP command parser',
        fc.property(line, (text) => {
          const start = text.trimStart();
          const space = start.search(/\s/);
          const rest = (space < 0 ? '' : start.slice(space)).trim();
          expect(parseSmtpCommand(text)).toEqual({
            verb: (space < 0 ? start : start.slice(0, space)).toUpperCase(),
            argument: rest === '' ? undefined : rest,
          });
        }),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );

  it(
    'parses lines of the longest allowed length in linear time',
    async () => {
      await check(
        'SMTP parser timing',
        fc.asyncProperty(
          fc.constantFrom('AUTH ', 'EHLO ', 'MAIL FROM:', 'NOOP ', '').chain(repetitiveLine),
          async (text) => {
            expect(await quickestRun(() => parseSmtpCommand(text))).toBeLessThan(25);
          },
        ),
        Math.ceil(runs / 20),
      );
    },
    timeoutFor(runs, 5),
  );

  const reply: fc.Arbitrary<SmtpReply> = fc.record({
    code: fc.integer({ min: 200, max: 559 }),
    lines: fc.array(
      fc
        .string({
          unit: fc.constantFrom('a', 'Z', '0', '.', ' ', '-', '[', ']', '\t'),
          maxLength: 30,
        })
        .map((s) => s.trimEnd()),
      { minLength: 1, maxLength: 5 },
    ),
  });

  it(
    'reads upstream replies back as written, continuation lines and all, in any chunking',
    async () => {
      await check(
        'SMTP reply round trip',
        fc.asyncProperty(
          fc.array(reply, { minLength: 1, maxLength: 4 }),
          fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 4 }),
          async (replies, sizes) => {
            const fed = feed(Buffer.from(replies.map(formatReply).join('')), sizes);
            const reader = new LineReader(fed.stream, 512);
            for (const r of replies) expect(await readSmtpReply(reader)).toEqual(r);
            expect(await readSmtpReply(reader)).toBeNull();
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 2),
  );

  it(
    'refuses anything else from the upstream with its own error, without hanging',
    async () => {
      await check(
        'SMTP reply reader on hostile input',
        fc.asyncProperty(
          fc.array(anyByte, { maxLength: 300 }),
          fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 4 }),
          async (input, sizes) => {
            const fed = feed(Uint8Array.from(input), sizes);
            const reader = new LineReader(fed.stream, 64);
            for (;;) {
              try {
                const r = await within(1_000, 'readSmtpReply', () => readSmtpReply(reader));
                if (r === null) return;
                expect(r.code).toBeGreaterThanOrEqual(200);
                expect(r.code).toBeLessThan(600);
              } catch (err) {
                if (err instanceof SmtpReplySyntaxError || err instanceof LineTooLongError) return;
                throw err;
              }
            }
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 2),
  );

  it(
    'rewrites any EHLO reply into a valid one that offers only what the proxy itself takes',
    async () => {
      await check(
        'EHLO rewrite',
        fc.property(
          fc.array(
            fc.oneof(
              fc.constantFrom(
                'SIZE 35882577',
                'PIPELINING',
                'AUTH LOGIN XOAUTH2',
                'AUTH=LOGIN',
                'STARTTLS',
                'starttls',
                'auth plain',
                '8BITMIME',
                'SMTPUTF8',
              ),
              fc.stringMatching(/^[A-Za-z0-9 =.-]{0,30}$/),
            ),
            { maxLength: 8 },
          ),
          fc.stringMatching(/^[a-z0-9.[\]:-]{1,40}$/),
          fc.boolean(),
          (extensions, clientName, canStartTls) => {
            const rewritten = rewriteEhloReply(
              { code: 250, lines: ['upstream.example Hello', ...extensions] },
              { hostname: 'proxy.test', clientName, canStartTls },
            );
            const output = Buffer.from(`220 proxy.test ready\r\n${formatReply(rewritten)}`);
            expect(smtpOutputViolations(output, { complete: true })).toEqual([]);
            const keywords = rewritten.lines.slice(1).map((l) => l.trim().toUpperCase());
            expect(keywords.filter((k) => /^AUTH[ =]|^AUTH$/.test(k))).toEqual([
              'AUTH PLAIN LOGIN',
            ]);
            expect(keywords.includes('STARTTLS')).toBe(canStartTls);
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );
});

describe('reply text, fuzzed', () => {
  it(
    'keeps any message on one line, within its byte budget, without splitting a character',
    async () => {
      await check(
        'oneLine',
        fc.property(
          fc.string({
            unit: fc.oneof(
              fc.constantFrom('\r', '\n', ' ', 'é', '日', '😀'),
              fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
            ),
            maxLength: 300,
          }),
          fc.integer({ min: 1, max: 400 }),
          (message, maxBytes) => {
            const text = oneLine(message, maxBytes);
            expect(text).not.toMatch(/[\r\n]/);
            expect(Buffer.byteLength(text)).toBeLessThanOrEqual(maxBytes);
            expect(
              message
                .replace(/[\r\n]+/g, ' ')
                .trim()
                .startsWith(text),
            ).toBe(true);
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 1),
  );
});

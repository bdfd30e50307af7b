import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ImapSyntaxError,
  LiteralTooLargeError,
  readImapCommand,
  type ImapCommand,
  type ImapToken,
} from '../../src/proxy/imap/command-reader.js';
import { LineReader, LineTooLongError } from '../../src/proxy/line-reader.js';
import { anyByte, mutate, mutation } from './support/bytes.js';
import { check, runsFor, timeoutFor } from './support/runs.js';
import { feed } from './support/streams.js';
import { quickestRun, repetitiveLine, within } from './support/timing.js';

/**
 * The IMAP command reader (lines, quoted strings, literals) on its own, fed from a stream in
 * arbitrary chunks: commands written from a grammar read back as written, anything else fails
 * with one of the reader's own errors, and no command makes it take in more than a command's
 * worth of bytes, whatever numbers it announces.
 */

const runs = runsFor('parser', 300);

/** Small limits, so that the fuzzer reaches them easily. */
const MAX_LINE = 200;
const MAX_LITERAL = 100;
/** What one command may take in: its first line, two credentials' worth of literals and the pieces between. */
const COMMAND_BOUND = MAX_LINE + 2 + 2 * MAX_LITERAL + MAX_LINE + 2;

const TAG_CHARS =
  "!#$&',-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz|}~";
const ATOM_CHARS =
  "!#$&'+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[^_`abcdefghijklmnopqrstuvwxyz|}~";
/** RFC 9051 tag: ASTRING-CHARs except "+". */
const VALID_TAG = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$/;

type Arg =
  | { readonly kind: 'atom'; readonly value: string }
  | { readonly kind: 'quoted'; readonly value: string }
  | { readonly kind: 'literal'; readonly bytes: Uint8Array; readonly sync: boolean }
  | { readonly kind: 'list'; readonly items: readonly Arg[] };

const quotedChar = fc.oneof(
  fc.constantFrom(...'abcXYZ019 "\\{}()*%]+\t\x01é日'),
  fc.constantFrom('\x7f', '😀'),
);
const arg: fc.Arbitrary<Arg> = fc.letrec<{ arg: Arg }>((tie) => ({
  arg: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      kind: fc.constant('atom' as const),
      value: fc.string({ unit: fc.constantFrom(...ATOM_CHARS), minLength: 1, maxLength: 12 }),
    }),
    fc.record({
      kind: fc.constant('quoted' as const),
      value: fc.string({ unit: quotedChar, maxLength: 12 }),
    }),
    fc.record({
      kind: fc.constant('literal' as const),
      bytes: fc.array(anyByte, { maxLength: 40 }).map((b) => Uint8Array.from(b)),
      sync: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('list' as const),
      items: fc.array(tie('arg'), { maxLength: 3 }),
    }),
  ),
})).arg;

interface Written {
  readonly bytes: Buffer;
  readonly command: ImapCommand;
  readonly syncLiterals: number;
}

/** Writes a command from its parts and says what the reader must make of it. */
function write(tag: string, verb: string, args: readonly Arg[]): Written {
  const pieces: Buffer[] = [Buffer.from(`${tag} ${verb}`)];
  const tokens: ImapToken[] = [];
  let syncLiterals = 0;
  const put = (a: Arg): void => {
    switch (a.kind) {
      case 'atom':
        pieces.push(Buffer.from(a.value));
        tokens.push({ type: 'atom', value: a.value });
        return;
      case 'quoted':
        pieces.push(Buffer.from(`"${a.value.replace(/[\\"]/g, '\\$&')}"`));
        tokens.push({ type: 'string', value: a.value });
        return;
      case 'literal':
        pieces.push(
          Buffer.from(`{${a.bytes.length}${a.sync ? '' : '+'}}\r\n`),
          Buffer.from(a.bytes),
        );
        tokens.push({ type: 'string', value: Buffer.from(a.bytes).toString('utf8') });
        if (a.sync) syncLiterals += 1;
        return;
      case 'list':
        pieces.push(Buffer.from('('));
        tokens.push({ type: 'open' });
        a.items.forEach((item, i) => {
          if (i > 0) pieces.push(Buffer.from(' '));
          put(item);
        });
        pieces.push(Buffer.from(')'));
        tokens.push({ type: 'close' });
    }
  };
  for (const a of args) {
    pieces.push(Buffer.from(' '));
    put(a);
  }
  pieces.push(Buffer.from('\r\n'));
  return {
    bytes: Buffer.concat(pieces),
    command: { tag, verb: verb.toUpperCase(), args: tokens },
    syncLiterals,
  };
}

const written = fc
  .record({
    tag: fc.string({ unit: fc.constantFrom(...TAG_CHARS), minLength: 1, maxLength: 8 }),
    verb: fc.stringMatching(/^[A-Za-z]{1,10}$/),
    args: fc.array(arg, { maxLength: 4 }),
  })
  .map(({ tag, verb, args }) => write(tag, verb, args));

const chunkSizes = fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 6 });

/** IMAP-looking input of every kind: commands, literal announcements of every size, chains of literals. */
const imapish: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc
    .tuple(fc.array(written, { minLength: 1, maxLength: 3 }), fc.array(mutation, { maxLength: 4 }))
    .map(([commands, mutations]) => mutate(Buffer.concat(commands.map((c) => c.bytes)), mutations)),
  fc
    .tuple(
      fc.constantFrom('a LOGIN ', 'a ', '', 'a X "', 'a X ('),
      fc.stringMatching(/^\{[0-9]{0,21}\+?\}$/),
      fc.constantFrom('\r\n', '\n', ''),
    )
    .map(([a, b, c]) => Buffer.from(`${a}${b}${c}`)),
  fc
    .tuple(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: MAX_LITERAL }), fc.boolean())
    .map(([count, size, sync]) =>
      Buffer.from(
        `a LOGIN ${`{${size}${sync ? '' : '+'}}\r\n${'y'.repeat(size)} `.repeat(count)}\r\n`,
      ),
    ),
  fc.array(anyByte, { maxLength: 300 }).map((b) => Uint8Array.from(b)),
);

describe('IMAP command reader, fuzzed', () => {
  it(
    'reads back every command written from the grammar, in any chunking, asking for each synchronizing literal',
    async () => {
      await check(
        'IMAP command round trip',
        fc.asyncProperty(
          fc.array(written, { minLength: 1, maxLength: 4 }),
          chunkSizes,
          async (commands, sizes) => {
            const fed = feed(Buffer.concat(commands.map((c) => c.bytes)), sizes);
            const reader = new LineReader(fed.stream, 8 * 1024);
            for (const c of commands) {
              let continuations = 0;
              const read = await readImapCommand(reader, {
                maxLiteralBytes: 16 * 1024,
                maxCommandBytes: 40 * 1024,
                continueLiteral: () => (continuations += 1),
              });
              expect(read).toEqual(c.command);
              expect(continuations).toBe(c.syncLiterals);
            }
            expect(
              await readImapCommand(reader, {
                maxLiteralBytes: 16 * 1024,
                maxCommandBytes: 40 * 1024,
                continueLiteral: () => undefined,
              }),
            ).toBeNull();
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 5),
  );

  it(
    'answers anything else with its own errors, echoes only valid tags, and never takes in more than a command',
    async () => {
      await check(
        'IMAP command reader on hostile input',
        fc.asyncProperty(imapish, chunkSizes, async (input, sizes) => {
          // Endless junk after the input: a reader that believed a number it was sent would keep reading.
          const fed = feed(input, sizes, Buffer.from('x'.repeat(64)));
          const reader = new LineReader(fed.stream, MAX_LINE);
          fed.watch();
          for (let i = 0; i < 20; i += 1) {
            const before = fed.delivered();
            let outcome: ImapCommand | null | Error;
            try {
              outcome = await within(1_000, 'readImapCommand', () =>
                readImapCommand(reader, {
                  maxLiteralBytes: MAX_LITERAL,
                  maxCommandBytes: MAX_LINE + 2 * MAX_LITERAL,
                  continueLiteral: () => undefined,
                }),
              );
            } catch (err) {
              outcome = err as Error;
            }
            expect(fed.delivered() - before).toBeLessThanOrEqual(COMMAND_BOUND + 2 * 64);
            if (outcome === null || outcome instanceof LineTooLongError) return;
            if (outcome instanceof LiteralTooLargeError) {
              expect(outcome.tag).toMatch(VALID_TAG);
              if (outcome.nonSynchronizing) return;
            } else if (outcome instanceof ImapSyntaxError) {
              if (outcome.tag !== undefined) expect(outcome.tag).toMatch(VALID_TAG);
            } else if (outcome instanceof Error) {
              throw outcome;
            } else {
              expect(outcome.tag).toMatch(VALID_TAG);
              expect(outcome.verb).toMatch(/^[A-Z]+$/);
            }
          }
        }),
        runs,
      );
    },
    timeoutFor(runs, 5),
  );

  it(
    'parses any line of the longest allowed length in linear time',
    async () => {
      await check(
        'IMAP command reader timing',
        fc.asyncProperty(repetitiveLine('a LOGIN '), async (line) => {
          const parse = async (): Promise<void> => {
            const fed = feed(Buffer.from(`${line}\r\n`, 'latin1'), [64 * 1024]);
            await readImapCommand(new LineReader(fed.stream, 8 * 1024), {
              maxLiteralBytes: 16 * 1024,
              maxCommandBytes: 40 * 1024,
              continueLiteral: () => undefined,
            }).catch(() => undefined);
          };
          expect(await quickestRun(parse)).toBeLessThan(25);
        }),
        Math.ceil(runs / 10),
      );
    },
    timeoutFor(runs, 50),
  );
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineReader, LineTooLongError } from '../../src/proxy/line-reader.js';
import { anyByte } from './support/bytes.js';
import { check, runsFor, timeoutFor } from './support/runs.js';
import { feed } from './support/streams.js';
import { within } from './support/timing.js';

/**
 * The line reader every pre-login conversation goes through, against a reference written here:
 * lines end at LF with an optional CR before it, a line past the limit fails, an unfinished line
 * at the end is dropped, counted reads take exactly their bytes, and `release` hands back exactly
 * what was not consumed. Whatever the chunking, and never holding more than a line and a chunk.
 */

const runs = runsFor('parser', 500);

const bytes = fc
  .oneof(
    fc.array(anyByte, { maxLength: 200 }),
    fc.array(fc.constantFrom(0x61, 0x0d, 0x0a), { maxLength: 200 }),
  )
  .map((b) => Buffer.from(b));
const chunkSizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 });

type Step = { readonly kind: 'line' } | { readonly kind: 'bytes'; readonly count: number };
const steps = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'line' as const }) },
    fc.record({ kind: fc.constant('bytes' as const), count: fc.nat(30) }),
  ),
  { maxLength: 12 },
);

type Outcome = Buffer | null | 'too-long';

/** The reference reader: the same steps over the whole input at once. */
function reference(
  input: Buffer,
  program: readonly Step[],
  maxLine: number,
): { outcomes: Outcome[]; rest: Buffer } {
  let offset = 0;
  const outcomes: Outcome[] = [];
  for (const step of program) {
    if (step.kind === 'bytes') {
      if (input.length - offset < step.count)
        return { outcomes: [...outcomes, null], rest: Buffer.alloc(0) };
      outcomes.push(input.subarray(offset, offset + step.count));
      offset += step.count;
      continue;
    }
    const lf = input.indexOf(0x0a, offset);
    if (lf < 0) {
      // No line end before the close: a line that could still be short enough is dropped quietly.
      const partial = input.length - offset;
      return {
        outcomes: [...outcomes, partial > maxLine + 1 ? 'too-long' : null],
        rest: Buffer.alloc(0),
      };
    }
    const end = lf > offset && input[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end - offset > maxLine)
      return { outcomes: [...outcomes, 'too-long'], rest: Buffer.alloc(0) };
    outcomes.push(input.subarray(offset, end));
    offset = lf + 1;
  }
  return { outcomes, rest: input.subarray(offset) };
}

describe('line reader, fuzzed', () => {
  it(
    'reads lines and counted bytes as the reference does, in any chunking',
    async () => {
      await check(
        'line reader against the reference',
        fc.asyncProperty(
          bytes,
          chunkSizes,
          steps,
          fc.integer({ min: 1, max: 50 }),
          async (input, sizes, program, maxLine) => {
            const expected = reference(input, program, maxLine);
            const fed = feed(input, sizes);
            const reader = new LineReader(fed.stream, maxLine);
            const outcomes: Outcome[] = [];
            for (const step of program) {
              let outcome: Outcome;
              try {
                outcome = await within(1_000, `${step.kind} read`, () =>
                  step.kind === 'line' ? reader.readRawLine() : reader.readBytes(step.count),
                );
              } catch (err) {
                if (!(err instanceof LineTooLongError)) throw err;
                outcome = 'too-long';
              }
              outcomes.push(
                outcome === null || outcome === 'too-long' ? outcome : Buffer.from(outcome),
              );
              if (outcome === null || outcome === 'too-long') break;
            }
            expect(outcomes).toEqual(expected.outcomes);
            if (outcomes.length === program.length && outcomes.every((o) => o instanceof Buffer)) {
              // What was not consumed comes back: what the reader holds, then what it never took.
              const held = reader.release();
              const unread: Buffer[] = [];
              fed.stream.on('data', (chunk: Buffer) => unread.push(chunk));
              fed.stream.resume();
              if (!fed.stream.readableEnded)
                await within(
                  1_000,
                  'the rest of the stream',
                  () => new Promise((resolve) => fed.stream.once('end', resolve)),
                );
              expect(Buffer.concat([held, ...unread])).toEqual(expected.rest);
            }
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 5),
  );

  it(
    'never takes in more than the longest line and a chunk, however long a line without an end is',
    async () => {
      await check(
        'line reader memory bound',
        fc.asyncProperty(
          bytes,
          chunkSizes,
          fc.integer({ min: 1, max: 100 }),
          async (input, sizes, maxLine) => {
            const fed = feed(input, sizes, Buffer.from('y'.repeat(40)));
            const reader = new LineReader(fed.stream, maxLine);
            fed.watch();
            let consumed = 0;
            for (;;) {
              const before = fed.delivered();
              try {
                const line = await reader.readRawLine();
                if (line === null) break;
                consumed = input.indexOf(0x0a, consumed) + 1;
              } catch (err) {
                if (!(err instanceof LineTooLongError)) throw err;
                break;
              }
              expect(fed.delivered() - before).toBeLessThanOrEqual(maxLine + 2 + 40);
            }
            expect(fed.delivered() - consumed).toBeLessThanOrEqual(maxLine + 2 + 40);
          },
        ),
        runs,
      );
    },
    timeoutFor(runs, 5),
  );
});

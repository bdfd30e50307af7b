import fc from 'fast-check';

/**
 * Time bounds for parsers. A regular expression that backtracks can take quadratic time on a
 * line of the longest allowed length, which a client can send fifty times per connection; the
 * properties check that no parser gets near that.
 */

/**
 * The quickest of a few runs of `work`, in milliseconds: a garbage collection or a busy machine
 * slows one run down, never all of them.
 */
export async function quickestRun(work: () => unknown, tries = 3): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < tries; i += 1) {
    const started = performance.now();
    await work();
    best = Math.min(best, performance.now() - started);
    if (best < 5) break;
  }
  return best;
}

/** Lines of up to 8 KiB made of one short pattern repeated, after `prefix`: what backtracking feeds on. */
export function repetitiveLine(prefix: string): fc.Arbitrary<string> {
  const unit = fc.oneof(
    // Runs of mixed whitespace are what `\s*(.*?)\s*$`-like patterns choke on.
    fc.constantFrom(' \t', '\t ', ' \r', 'a ', ' a', '\t\t ', '{1}', '\\"'),
    fc.string({
      unit: fc.constantFrom(
        ' ',
        '\t',
        'a',
        'A',
        '0',
        '{',
        '}',
        '"',
        '\\',
        '+',
        '=',
        ':',
        '(',
        ')',
        '*',
        '\r',
        '.',
        '-',
        '\0',
      ),
      minLength: 1,
      maxLength: 4,
    }),
  );
  return fc
    .tuple(unit, fc.integer({ min: 1000, max: 8000 }), fc.constantFrom('', 'x', '{5}', '"', ' '))
    .map(([u, n, end]) => `${prefix}${u.repeat(n)}`.slice(0, 8 * 1024 - 16) + end);
}

/** `work`, or a failure naming `what` if it has not settled after `ms`: a parser must never hang. */
export async function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work(), hung]);
  } finally {
    clearTimeout(timer);
  }
}

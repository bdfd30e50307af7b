import fc from 'fast-check';

/**
 * How long the fuzz properties run. The test suite runs a short sample of each; `npm run fuzz`
 * sets the environment for a campaign:
 *
 * - `FUZZ_RUNS`: cases per pure-parser property (no sockets, thousands a second).
 * - `FUZZ_SESSION_RUNS`: cases per socket-level property (a real listener, tens a second).
 * - `FUZZ_SEED` (and `FUZZ_PATH`): replay the case a failure report names.
 * - `FUZZ_SUPPRESS=F2,F10`: look past known open findings to find others (see `suppressed`).
 */

export type FuzzKind = 'parser' | 'session';

const ENV: Record<FuzzKind, string> = { parser: 'FUZZ_RUNS', session: 'FUZZ_SESSION_RUNS' };

/** Whether this is a long campaign rather than the suite's short sample. */
export const CAMPAIGN =
  process.env.FUZZ_RUNS !== undefined || process.env.FUZZ_SESSION_RUNS !== undefined;

/** Cases to run: the environment's number for the kind, or `shortRuns` in the test suite. */
export function runsFor(kind: FuzzKind, shortRuns: number): number {
  const configured = Number(process.env[ENV[kind]]);
  return Number.isInteger(configured) && configured > 0 ? configured : shortRuns;
}

/** A vitest timeout that fits `runs` cases of a property whose case takes up to `msPerCase`. */
export function timeoutFor(runs: number, msPerCase: number): number {
  return 60_000 + runs * msPerCase;
}

/**
 * fast-check parameters for a property: the run count, and the replay seed when one is given.
 * Shrinking stays on, so a failure is reported as a small counterexample.
 */
export function parametersFor<T>(runs: number): fc.Parameters<T> {
  const seed = Number(process.env.FUZZ_SEED);
  const path = process.env.FUZZ_PATH;
  return {
    numRuns: runs,
    ...(Number.isInteger(seed) ? { seed } : {}),
    ...(path ? { path } : {}),
    // A hang costs seconds per shrinking step; the suite reports the smallest case found by then.
    ...(CAMPAIGN ? {} : { interruptAfterTimeLimit: SUITE_TIME_LIMIT_MS }),
  };
}

/** How long one property may take in the test suite, shrinking included. */
const SUITE_TIME_LIMIT_MS = 40_000;

/**
 * Runs a property and, in a campaign, prints how many cases it ran and how long it took, which
 * is what the campaign's closing report adds up.
 */
export async function check<T>(
  name: string,
  property: fc.IAsyncProperty<T> | fc.IProperty<T>,
  runs: number,
): Promise<void> {
  const started = performance.now();
  await fc.assert(property, parametersFor<T>(runs));
  if (CAMPAIGN) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`fuzz: ${name}: ${runs} cases, ${seconds} s, no failure`);
  }
}

/**
 * Whether a campaign was asked to look past a known open finding (`FUZZ_SUPPRESS=F2,F10`):
 * F2 lets control characters echoed into reply text pass the grammar check; F10 stops offering
 * local STARTTLS to hostile clients. The test suite never sets it.
 */
export function suppressed(finding: 'F2' | 'F10'): boolean {
  return (process.env.FUZZ_SUPPRESS ?? '').split(',').includes(finding);
}

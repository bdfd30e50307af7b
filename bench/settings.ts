/** Command-line settings of a benchmark run. */
import { resolve } from 'node:path';

/** Issue 7: bulk throughput through the proxy at least 0.9 of direct. */
export const ISSUE_BULK_TARGET = 0.9;

/** Issue 13: bulk throughput through the proxy at least 0.95 of stunnel's (the floor). */
export const FLOOR_BULK_TARGET = 0.95;
/** Issue 13: a small command's round trip at most this much (ms) slower than through stunnel. */
export const FLOOR_LATENCY_TARGET_MS = 0.02;
/** Issue 13: the simulated wide-area delay between client or proxy and the server, each way (ms). */
export const WAN_ONE_WAY_MS = 20;

/** Every scenario, in the order a run performs them. */
export const SCENARIOS = [
  'startup',
  'first-login',
  'throughput',
  'noop',
  'login',
  'storm',
  'idle',
  'wan',
  'fleet',
] as const;
/** One measurement group, as `--only` names it. */
export type ScenarioName = (typeof SCENARIOS)[number];

/** How big a run is and what it does with the result. */
export interface Settings {
  readonly quick: boolean;
  /** Exit non-zero when a target is missed. */
  readonly check: boolean;
  readonly only: ReadonlySet<ScenarioName>;
  /** Where the JSON result goes. */
  readonly out: string;
  /** Runs the proxy under `--cpu-prof`, writing profiles here. */
  readonly profileDir?: string;
  /**
   * The proxy/direct throughput ratio to require: issue 7's 0.90 unless lowered explicitly (a CI
   * floor on a machine where 0.90 is beyond what its cores allow; see docs/performance.md).
   */
  readonly bulkTarget: number;
  /** The proxy/stunnel throughput ratio to require: issue 13's 0.95, or `--bulk-target` if lower. */
  readonly floorBulkTarget: number;
  /** Extra `NODE_OPTIONS` for the proxy (e.g. V8 heap flags), for experiments. */
  readonly proxyNodeOptions?: string;
  /** Messages in the mailbox; an IMAP FETCH takes all, POP3 RETRs each. */
  readonly messages: number;
  readonly messageBytes: number;
  /** Timed transfers per route and protocol (after one warm-up each). */
  readonly bulkRepetitions: number;
  /** NOOP round trips per route. */
  readonly noopRounds: number;
  /** Logins with a cached token per route. */
  readonly logins: number;
  readonly stormLogins: number;
  readonly idleSessions: number;
  readonly idleWindowMs: number;
  readonly startups: number;
}

const USAGE = `usage: npm run bench -- [--quick] [--check] [--only ${SCENARIOS.join(',')}] [--out FILE]
                        [--bulk-target RATIO] [--profile DIR] [--proxy-node-options OPTS]

  --quick     small sizes (about a minute), for CI
  --check     exit 1 when a target from issue 7 is missed
  --only      run only these scenarios (comma-separated)
  --out       result file (default bench/results/latest.json)
  --bulk-target RATIO   throughput ratio to require (default 0.90, issue 7's target; a lower one
                        also lowers the 0.95 required of the ratio to stunnel)
  --profile   run the proxy under node --cpu-prof and write its profile to DIR
  --proxy-node-options OPTS   NODE_OPTIONS for the proxy (experiments, e.g. --max-semi-space-size=1)`;

/** Reads the command line (`npm run bench -- ...`); throws with the usage on a mistake. */
export function parseSettings(argv: readonly string[]): Settings {
  let quick = false;
  let check = false;
  let only: Set<ScenarioName> = new Set(SCENARIOS);
  let out = resolve('bench/results/latest.json');
  let profileDir: string | undefined;
  let proxyNodeOptions: string | undefined;
  let bulkTarget = ISSUE_BULK_TARGET;
  let bulkTargetGiven = false;
  for (let i = 0; i < argv.length; i += 1) {
    const argument = argv[i]!;
    const value = (): string => {
      const next = argv[(i += 1)];
      if (next === undefined) throw new Error(`${argument} needs a value\n${USAGE}`);
      return next;
    };
    if (argument === '--quick') quick = true;
    else if (argument === '--check') check = true;
    else if (argument === '--out') out = resolve(value());
    else if (argument === '--profile') profileDir = resolve(value());
    else if (argument === '--proxy-node-options') proxyNodeOptions = value();
    else if (argument === '--bulk-target') {
      bulkTarget = Number(value());
      bulkTargetGiven = true;
      if (!(bulkTarget > 0 && bulkTarget <= 1))
        throw new Error(`--bulk-target needs a ratio between 0 and 1\n${USAGE}`);
    } else if (argument === '--only') {
      const names = value().split(',');
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
      only = new Set(names as ScenarioName[]);
    } else if (argument === '--help' || argument === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${argument}\n${USAGE}`);
  }
  const sizes = quick
    ? {
        messages: 4,
        bulkRepetitions: 9,
        noopRounds: 2_000,
        logins: 40,
        idleWindowMs: 2_000,
        startups: 2,
      }
    : {
        messages: 10,
        bulkRepetitions: 11,
        noopRounds: 5_000,
        logins: 150,
        idleWindowMs: 10_000,
        startups: 5,
      };
  return {
    quick,
    check,
    only,
    out,
    ...(profileDir !== undefined && { profileDir }),
    ...(proxyNodeOptions !== undefined && { proxyNodeOptions }),
    bulkTarget,
    floorBulkTarget: bulkTargetGiven ? Math.min(FLOOR_BULK_TARGET, bulkTarget) : FLOOR_BULK_TARGET,
    messageBytes: 10 * 1024 * 1024,
    stormLogins: 500,
    idleSessions: 2_000,
    ...sizes,
  };
}

/** Command-line settings of a soak run (`node .tmp/bench/bench/soak/run.js --sessions 50 ...`). */

/** How big and how long a soak run is. */
export interface SoakSettings {
  /** Authenticated IMAP sessions held open and looping for the whole run. */
  readonly sessions: number;
  readonly minutes: number;
  /** Simultaneous new logins after the soak. */
  readonly burst: number;
  /** Pause of each IMAP session between two rounds of FETCH + NOOP, so load is steady, not flat out. */
  readonly thinkMs: number;
  /** SMTP messages sent per second through the proxy (each on its own authenticated connection). */
  readonly smtpPerSecond: number;
  /** Descriptors the proxy may hold after everything closed beyond what it held before. */
  readonly fdSlack: number;
  /** Seconds between two progress reports. */
  readonly reportSeconds: number;
}

const USAGE = `usage: node .tmp/bench/bench/soak/run.js [--sessions N] [--minutes M] [--burst B]
        [--think-ms MS] [--smtp-per-second R] [--fd-slack K] [--report-seconds S]

  --sessions         concurrent IMAP sessions looping SELECT/FETCH/NOOP (default 500)
  --minutes          soak duration (default 10)
  --burst            simultaneous new logins after the soak (default 500)
  --think-ms         pause per session between rounds (default 1000)
  --smtp-per-second  SMTP sends per second (default 2)
  --fd-slack         allowed extra proxy fds after all sessions closed (default 10)
  --report-seconds   progress report interval (default 30)`;

const LIMITS = {
  sessions: [1, 5_000],
  minutes: [0.05, 120],
  burst: [0, 5_000],
  thinkMs: [0, 60_000],
  smtpPerSecond: [0, 100],
  fdSlack: [0, 1_000],
  reportSeconds: [1, 3_600],
} as const satisfies Record<keyof SoakSettings, readonly [number, number]>;

const FLAGS: Record<string, keyof SoakSettings> = {
  '--sessions': 'sessions',
  '--minutes': 'minutes',
  '--burst': 'burst',
  '--think-ms': 'thinkMs',
  '--smtp-per-second': 'smtpPerSecond',
  '--fd-slack': 'fdSlack',
  '--report-seconds': 'reportSeconds',
};

/** Reads the command line; throws with the usage on a mistake. Every number is bounded. */
export function parseSoakSettings(argv: readonly string[]): SoakSettings {
  const settings: Record<keyof SoakSettings, number> = {
    sessions: 500,
    minutes: 10,
    burst: 500,
    thinkMs: 1_000,
    smtpPerSecond: 2,
    fdSlack: 10,
    reportSeconds: 30,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = FLAGS[flag];
    if (key === undefined) throw new Error(`unknown argument ${flag}\n${USAGE}`);
    const value = Number(argv[(i += 1)]);
    const [low, high] = LIMITS[key];
    if (!Number.isFinite(value) || value < low || value > high) {
      throw new Error(`${flag} needs a number from ${low} to ${high}\n${USAGE}`);
    }
    settings[key] = value;
  }
  return settings;
}

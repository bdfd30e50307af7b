/**
 * `npm run bench`: the proxy against a direct connection to the same real servers, in one run.
 * Starts the peers (Dovecot over TLS, the SMTP server with STARTTLS, the test identity provider)
 * and the built proxy (`dist/cli/main.js`) as its own process, runs each scenario, prints a table,
 * writes a JSON result and, with `--check`, exits 1 when a target of issue 7 is missed.
 *
 * Compiled by `tsconfig.bench.json` into `.tmp/bench/`; the npm script links `.tmp/bench/dist` to
 * the real `dist/`, where the compiled test helpers (test/support/proxy-process.ts) look for the proxy.
 */
import { mkdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ProxyProcess } from '../test/support/proxy-process.js';
import type { Context } from './context.js';
import { BenchPeers, MAIN_ACCOUNT, SECOND_ACCOUNT } from './peers.js';
import { message } from './mail.js';
import { load, machine, table, writeResults } from './report.js';
import { misses, type Row } from './results.js';
import { firstLogin } from './scenarios/first-login.js';
import { idleSessions } from './scenarios/idle.js';
import { cachedLogin } from './scenarios/login.js';
import { noopLatency } from './scenarios/noop.js';
import { loginStorm } from './scenarios/storm.js';
import { farLogin } from './scenarios/wan-login.js';
import { fleet } from './scenarios/fleet.js';
import { startup } from './scenarios/startup.js';
import { throughput } from './scenarios/throughput.js';
import { parseSettings, type ScenarioName, type Settings } from './settings.js';

/** The proxy's environment: NODE_OPTIONS asked for, and the profiler preload with `--profile`. */
async function proxyEnv(settings: Settings): Promise<NodeJS.ProcessEnv> {
  const options = settings.proxyNodeOptions === undefined ? [] : [settings.proxyNodeOptions];
  if (settings.profileDir === undefined)
    return options.length === 0 ? {} : { NODE_OPTIONS: options.join(' ') };
  await mkdir(settings.profileDir, { recursive: true });
  const preload = fileURLToPath(new URL('./cpu-profile-preload.js', import.meta.url));
  return {
    NODE_OPTIONS: [`--import=${preload}`, ...options].join(' '),
    BENCH_CPU_PROFILE_DIR: settings.profileDir,
  };
}

/** Progress for the operator, on stderr, so stdout holds only the result. */
const progress = (text: string): void => {
  process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${text}\n`);
};

async function stopProxy(proxy: ProxyProcess): Promise<void> {
  const code = await proxy.stop();
  if (code !== 0)
    progress(`the proxy exited with ${code}; its output:\n${proxy.output.slice(-4_000)}`);
}

async function run(settings: Settings): Promise<Row[]> {
  const rows: Row[] = [];
  const wanted = (name: ScenarioName): boolean => settings.only.has(name);
  progress('starting Dovecot, the SMTP server and the identity provider');
  const peers = await BenchPeers.start();
  try {
    for (let i = 1; i <= settings.messages; i += 1) {
      await peers.dovecot.deliver(
        MAIN_ACCOUNT.user,
        message('sender@example.net', MAIN_ACCOUNT.user, `bulk ${i}`, settings.messageBytes),
      );
    }
    await peers.dovecot.deliver(
      SECOND_ACCOUNT.user,
      message('sender@example.net', SECOND_ACCOUNT.user, 'hello', 1_000),
    );
    const [main, second] = await Promise.all([
      peers.seed(MAIN_ACCOUNT),
      peers.seed(SECOND_ACCOUNT),
    ]);

    if (wanted('startup')) rows.push(...(await startup({ peers, settings, progress })));

    const proxy = await peers.startProxy(await proxyEnv(settings));
    const context: Context = {
      settings,
      peers,
      proxy,
      imap: {
        direct: { port: peers.dovecot.imapsPort, ca: peers.dovecotCa },
        proxy: { port: peers.ports.imap },
        stunnel: { port: peers.stunnel.ports.imap! },
      },
      pop3: {
        direct: { port: peers.dovecot.pop3sPort, ca: peers.dovecotCa },
        proxy: { port: peers.ports.pop3 },
        stunnel: { port: peers.stunnel.ports.pop3! },
      },
      smtp: {
        direct: { port: peers.smtp.port },
        proxy: { port: peers.ports.smtp },
        stunnel: { port: peers.stunnel.ports.smtp! },
      },
      main,
      second,
      progress,
    };
    try {
      // First, while the proxy has derived no key yet.
      if (wanted('first-login')) rows.push(...(await firstLogin(context)));
      if (wanted('throughput')) rows.push(...(await throughput(context)));
      if (wanted('noop')) rows.push(...(await noopLatency(context)));
      if (wanted('login')) rows.push(...(await cachedLogin(context)));
      if (wanted('storm')) rows.push(...(await loginStorm(context)));
      if (wanted('wan')) rows.push(...(await farLogin(context)));
      if (wanted('fleet')) rows.push(...(await fleet(context)));
      if (wanted('idle') && !settings.quick)
        rows.push(...(await idleSessions(context, 'after-load')));
    } finally {
      await stopProxy(proxy);
    }
    if (wanted('idle')) {
      progress('starting a fresh proxy for the idle sessions');
      const fresh = await peers.startProxy(await proxyEnv(settings));
      try {
        rows.push(...(await idleSessions({ ...context, proxy: fresh }, 'fresh')));
      } finally {
        await stopProxy(fresh);
      }
    }
  } finally {
    await peers.stop();
  }
  return rows;
}

async function main(): Promise<number> {
  const settings = parseSettings(process.argv.slice(2));
  const startedAt = new Date();
  const loadAtStart = load();
  const rows = await run(settings);
  const durationSeconds = (Date.now() - startedAt.getTime()) / 1000;

  console.log(table(rows));
  for (const row of rows) if (row.note) console.log(`- ${row.label}: ${row.note}`);
  const result = {
    startedAt: startedAt.toISOString(),
    durationSeconds,
    machine: machine(loadAtStart),
    settings: { ...settings, only: [...settings.only] },
    rows,
  };
  await writeResults(settings.out, result);
  const { cpus, cpuModel, node, loadAverage } = result.machine;
  console.log(
    `\n${rows.length} measurements in ${durationSeconds.toFixed(0)} s on ${cpus} x ${cpuModel}, Node ${node}; ` +
      `load average ${loadAverage.start.toFixed(2)} at the start, ${loadAverage.end.toFixed(2)} at the end; results in ${settings.out}`,
  );

  const missed = rows.filter(misses);
  if (missed.length === 0) return 0;
  console.log(`targets missed: ${missed.map((row) => row.label).join('; ')}`);
  return settings.check ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);

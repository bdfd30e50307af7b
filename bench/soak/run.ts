/**
 * Load and soak (issue 6, item 7): N authenticated IMAP sessions through the built proxy looping
 * EXAMINE / FETCH / NOOP against Dovecot over TLS, SMTP sends through it to the STARTTLS server,
 * for a set time; then a burst of B simultaneous new logins. Every `--report-seconds` and at the
 * end it prints operations, errors and the proxy's RSS and open descriptors. Exits 1 on any
 * error, a lost or extra SMTP message, a proxy exit, or descriptors left open after every session
 * closed (more than the count before plus `--fd-slack`). All traffic stays on 127.0.0.1.
 *
 * Built with `tsc -p tsconfig.bench.json`; `.tmp/bench/dist` must link to the built proxy
 * (see the `bench` npm script).
 */
import { proxyPid, sleep } from '../context.js';
import { message } from '../mail.js';
import { BenchPeers, MAIN_ACCOUNT } from '../peers.js';
import { imapExamineInbox, imapFetchAll, imapLogin } from '../protocols/imap.js';
import { max, median, percentile } from '../stats.js';
import type { Endpoint } from '../wire.js';
import {
  describeFootprint,
  footprint,
  settledFootprint,
  type Footprint,
} from './proxy-resources.js';
import { parseSoakSettings, type SoakSettings } from './settings.js';
import {
  closeSessions,
  loginBurst,
  openSessions,
  sendOne,
  sessionLoop,
  smtpSender,
  Tally,
} from './traffic.js';

/** Logins in flight while the soak's sessions are opened: holding many, not a storm. */
const OPENING_CONCURRENCY = 50;
/** How long descriptors may take to come back after the sessions closed. */
const FD_SETTLE_MS = 15_000;
const MESSAGE_BYTES = 2_000;

const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const say = (text: string): void => console.log(`[soak ${elapsed()}] ${text}`);

async function soak(settings: SoakSettings): Promise<boolean> {
  say(`settings ${JSON.stringify(settings)}`);
  say('starting Dovecot (TLS), the SMTP server (STARTTLS) and the identity provider');
  const peers = await BenchPeers.start();
  const problems: string[] = [];
  try {
    await peers.dovecot.deliver(
      MAIN_ACCOUNT.user,
      message('sender@example.net', MAIN_ACCOUNT.user, 'soak', MESSAGE_BYTES),
    );
    const credentials = await peers.seed(MAIN_ACCOUNT);
    const proxy = await peers.startProxy();
    const pid = proxyPid({ proxy });
    const imap: Endpoint = { port: peers.ports.imap };
    const smtp: Endpoint = { port: peers.ports.smtp };
    const tally = new Tally();
    try {
      // One session and one send first, so one-time setup (key derivation, TLS contexts) is not
      // mistaken for a leak; the baseline is taken after they closed.
      const warm = await imapLogin('proxy', imap, credentials);
      await imapExamineInbox(warm);
      await imapFetchAll(warm, 1);
      await closeSessions([warm], tally);
      await sendOne(smtp, credentials, peers.smtp.ca, 0);
      tally.smtpSent += 1;
      await sleep(1_000);
      const before = footprint(pid);
      say(`proxy ${pid} before the soak: ${describeFootprint(before)}`);

      say(`opening ${settings.sessions} IMAP sessions`);
      const wires = await openSessions(
        settings.sessions,
        OPENING_CONCURRENCY,
        imap,
        credentials,
        tally,
      );
      const opened = footprint(pid);
      say(`${wires.length} sessions open: ${describeFootprint(opened)}`);

      const deadline = performance.now() + settings.minutes * 60_000;
      const readings: Footprint[] = [];
      const report = (): void => {
        const reading = footprint(pid);
        readings.push(reading);
        say(
          `ops ${tally.operations()} (examine ${tally.examines}, fetch ${tally.fetches}, noop ${tally.noops}, smtp ${tally.smtpSent}, logins ${tally.logins}), ` +
            `errors ${tally.errors}, ${describeFootprint(reading)}`,
        );
      };
      const reporter = setInterval(report, settings.reportSeconds * 1_000);
      try {
        await Promise.all([
          ...wires.map((wire) => sessionLoop(wire, deadline, settings.thinkMs, tally)),
          smtpSender(smtp, credentials, peers.smtp.ca, settings.smtpPerSecond, deadline, tally),
        ]);
      } finally {
        clearInterval(reporter);
      }
      report();
      const during = footprint(pid);
      say(`soak over; sessions still open: ${describeFootprint(during)}`);

      await closeSessions(wires, tally);
      const afterClose = await settledFootprint(pid, before.fds + settings.fdSlack, FD_SETTLE_MS);
      say(`all sessions closed: ${describeFootprint(afterClose)}`);

      let burstLine = 'burst skipped';
      if (settings.burst > 0) {
        say(`burst: ${settings.burst} simultaneous logins`);
        const burst = await loginBurst(settings.burst, imap, credentials, tally);
        burstLine =
          `burst ${burst.accepted}/${settings.burst} logins accepted, all in ${(burst.totalMs / 1000).toFixed(2)} s ` +
          `(per login median ${median(burst.perLoginMs).toFixed(0)} ms, p95 ${percentile(burst.perLoginMs, 95).toFixed(0)} ms, ` +
          `slowest ${max(burst.perLoginMs).toFixed(0)} ms)`;
        say(burstLine);
      }
      const afterBurst = await settledFootprint(pid, before.fds + settings.fdSlack, FD_SETTLE_MS);
      say(`burst closed: ${describeFootprint(afterBurst)}`);

      const accepted = (await peers.smtp.take()).length;
      // The warm-up send is in both counts.
      if (accepted !== tally.smtpSent)
        problems.push(
          `SMTP: ${tally.smtpSent} sends confirmed but the server accepted ${accepted}`,
        );
      if (tally.errors > 0)
        problems.push(`${tally.errors} errors; first: ${tally.failures.join(' | ')}`);
      if (proxy.child.exitCode !== null)
        problems.push(`the proxy exited with ${proxy.child.exitCode}`);
      for (const [when, reading] of [
        ['after closing the soak sessions', afterClose],
        ['after the burst', afterBurst],
      ] as const) {
        if (reading.fds > before.fds + settings.fdSlack) {
          problems.push(
            `fds ${when}: ${reading.fds} > ${before.fds} before + ${settings.fdSlack} slack`,
          );
        }
      }

      const rss = readings.map((reading) => reading.rssMB);
      console.log('\n=== soak summary ===');
      console.log(
        `sessions ${wires.length}/${settings.sessions} for ${settings.minutes} min, think ${settings.thinkMs} ms, smtp ${settings.smtpPerSecond}/s`,
      );
      console.log(
        `operations ${tally.operations()}: logins ${tally.logins}, examine ${tally.examines}, fetch ${tally.fetches}, noop ${tally.noops}, ` +
          `smtp sent ${tally.smtpSent} (server accepted ${accepted}, skipped ticks ${tally.smtpSkipped})`,
      );
      console.log(`errors ${tally.errors}`);
      console.log(`proxy RSS per report (MB): ${rss.map((value) => value.toFixed(1)).join(', ')}`);
      if (rss.length > 0) {
        console.log(
          `proxy RSS first report ${rss[0]!.toFixed(1)} MB, last ${rss[rss.length - 1]!.toFixed(1)} MB, max ${max(rss).toFixed(1)} MB`,
        );
      }
      console.log(
        `proxy fds: before ${before.fds}, ${wires.length} sessions open ${opened.fds}, end of soak ${during.fds}, ` +
          `after closing ${afterClose.fds}, after burst ${afterBurst.fds} (slack ${settings.fdSlack})`,
      );
      console.log(burstLine);
    } finally {
      const code = await proxy.stop();
      if (code !== 0)
        problems.push(
          `the proxy exited with ${code} when stopped; output tail:\n${proxy.output.slice(-2_000)}`,
        );
    }
  } finally {
    await peers.stop();
  }
  for (const problem of problems) console.log(`FAIL ${problem}`);
  console.log(problems.length === 0 ? 'PASS' : 'FAIL');
  return problems.length === 0;
}

soak(parseSoakSettings(process.argv.slice(2))).then(
  (passed) => process.exit(passed ? 0 : 1),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);

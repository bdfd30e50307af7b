/**
 * A login against a distant server: Dovecot behind a relay that delays every byte by
 * {@link WAN_ONE_WAY_MS} each way (and the TCP handshake by a round trip), timed from connect to
 * the login's tagged OK. Direct is a TLS connection from the client to the distant server with
 * XOAUTH2; the proxy's route is a plain local connection with a password, the proxy itself
 * reaching the server across the same delay.
 *
 * Two clients: curl (C; it asks for CAPABILITY before logging in, as imaplib, mutt and fetchmail
 * do) and the benchmark's own, which logs in straight after the greeting.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Context } from '../context.js';
import { interleaved, pairedRatio, type RouteName } from '../interleave.js';
import { imapLogin } from '../protocols/imap.js';
import { atMost, compared, type Row } from '../results.js';
import { WAN_ONE_WAY_MS } from '../settings.js';
import { median } from '../stats.js';

const run = promisify(execFile);
const WARM_UP = 2;

/** Seconds since midnight from curl's `--trace-time` stamp (`HH:MM:SS.micros`). */
function stamp(line: string): number {
  const [, h = '0', m = '0', s = '0'] = /^(\d\d):(\d\d):(\d\d\.\d+)/.exec(line) ?? [];
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

/**
 * From curl's verbose trace: milliseconds from its first line (`Trying ...`, before the connect)
 * to the tagged OK of its login command (`AUTHENTICATE` or `LOGIN`).
 */
export function curlLoginMs(trace: string): number {
  const lines = trace.split('\n').filter((line) => /^\d\d:\d\d:\d\d\.\d+ /.test(line));
  const tag = lines
    .map((line) => / > (A\d+) (?:AUTHENTICATE|LOGIN)\b/.exec(line)?.[1])
    .find((found) => found !== undefined);
  const ok = lines.find((line) => tag !== undefined && line.includes(` < ${tag} OK`));
  if (lines.length === 0 || ok === undefined)
    throw new Error(`curl did not log in:\n${trace.slice(-2_000)}`);
  return (stamp(ok) - stamp(lines[0]!)) * 1000;
}

export async function farLogin(context: Context): Promise<Row[]> {
  const { peers, main } = context;
  const far = peers.farImap.port;
  const curl = async (route: RouteName): Promise<number> => {
    const common = ['-sS', '-v', '--trace-time', '--max-time', '20'];
    const args =
      route === 'proxy'
        ? [
            ...common,
            '-u',
            `${main.user}:${main.password}`,
            `imap://127.0.0.1:${peers.ports.farImap}/`,
          ]
        : [
            ...common,
            '--cacert',
            peers.dovecot.caFile,
            '--login-options',
            'AUTH=XOAUTH2',
            '-u',
            `${main.user}:`,
            '--oauth2-bearer',
            main.accessToken,
            `imaps://127.0.0.1:${far}/`,
          ];
    const { stderr } = await run('curl', args);
    return curlLoginMs(stderr);
  };
  const ownClient = async (route: RouteName): Promise<number> => {
    const started = performance.now();
    const endpoint =
      route === 'proxy' ? { port: peers.ports.farImap } : { port: far, ca: peers.dovecotCa };
    const wire = await imapLogin(route, endpoint, main);
    const ms = performance.now() - started;
    wire.close();
    return ms;
  };
  const logins = context.settings.quick ? 6 : 20;
  context.progress(`logins across ${WAN_ONE_WAY_MS} ms each way: ${logins} per route and client`);
  const rows: Row[] = [];
  for (const [client, login] of [
    ['curl', curl],
    ['a client that logs in at the greeting', ownClient],
  ] as const) {
    for (let i = 0; i < WARM_UP; i += 1) await interleaved(1, login);
    const samples = await interleaved(logins, login);
    rows.push(
      compared(
        {
          id: `wan_login_${client === 'curl' ? 'curl' : 'eager'}`,
          label: `IMAP login across ${WAN_ONE_WAY_MS} ms each way, ${client}: connect to tagged OK, median`,
          unit: 'ms',
          direct: median(samples.direct),
          proxy: median(samples.proxy),
          target: atMost(1),
          note: `median of per-pair ratios over ${logins} pairs; direct ${samples.direct.map((ms) => ms.toFixed(0)).join(' ')}, proxy ${samples.proxy.map((ms) => ms.toFixed(0)).join(' ')} ms`,
        },
        'ratio',
        pairedRatio(samples),
      ),
    );
  }
  return rows;
}

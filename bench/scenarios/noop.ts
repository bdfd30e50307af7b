/**
 * The round trip of a small command after login (IMAP, POP3 and SMTP `NOOP`), the cost every
 * interactive command pays: one session per route, thousands of round trips in alternating
 * blocks, on every route: direct, through stunnel (the floor) and through the proxy.
 */
import type { Context } from '../context.js';
import { ALL_ROUTES, interleaved, type RouteName } from '../interleave.js';
import { imapLogin, imapNoop } from '../protocols/imap.js';
import { pop3Login, pop3Noop } from '../protocols/pop3.js';
import { smtpLogin, smtpNoop } from '../protocols/smtp.js';
import { atMost, compared, withFloor, type Row } from '../results.js';
import { FLOOR_LATENCY_TARGET_MS } from '../settings.js';
import { median, percentile } from '../stats.js';
import type { Wire } from '../wire.js';

const BLOCK = 250;
const WARM_UP = 200;

/** One protocol's session and small command. */
interface SmallCommand {
  readonly protocol: string;
  readonly login: (route: RouteName) => Promise<Wire>;
  readonly command: (wire: Wire) => Promise<void>;
}

async function roundTrips(
  wire: Wire,
  command: (wire: Wire) => Promise<void>,
  count: number,
  into: number[],
): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await command(wire);
    into.push(performance.now() - started);
  }
}

/** Median and p99 of each route, what the proxy adds to direct, and what it adds to stunnel. */
async function measure(context: Context, small: SmallCommand): Promise<Row[]> {
  const rounds = context.settings.noopRounds;
  context.progress(`${small.protocol} NOOP: ${rounds} round trips per route`);
  const wires = {
    direct: await small.login('direct'),
    proxy: await small.login('proxy'),
    stunnel: await small.login('stunnel'),
  };
  try {
    for (const route of ALL_ROUTES) await roundTrips(wires[route], small.command, WARM_UP, []);
    const samples = { direct: [] as number[], proxy: [] as number[], stunnel: [] as number[] };
    await interleaved(
      Math.ceil(rounds / BLOCK),
      (route) => roundTrips(wires[route], small.command, BLOCK, samples[route]),
      ALL_ROUTES,
    );
    const note = `${samples.proxy.length} round trips per route in blocks of ${BLOCK}`;
    const id = small.protocol.toLowerCase();
    return [
      withFloor(
        compared(
          {
            id: id === 'imap' ? 'noop_rtt_median' : `${id}_noop_rtt_median`,
            label: `${small.protocol} NOOP round trip, median`,
            unit: 'ms',
            direct: median(samples.direct),
            proxy: median(samples.proxy),
            ...(id === 'imap' && { target: atMost(0.1) }),
            note,
          },
          'added',
        ),
        median(samples.stunnel),
        atMost(FLOOR_LATENCY_TARGET_MS),
      ),
      withFloor(
        compared(
          {
            id: id === 'imap' ? 'noop_rtt_p99' : `${id}_noop_rtt_p99`,
            label: `${small.protocol} NOOP round trip, p99`,
            unit: 'ms',
            direct: percentile(samples.direct, 99),
            proxy: percentile(samples.proxy, 99),
            note,
          },
          'added',
        ),
        percentile(samples.stunnel, 99),
      ),
    ];
  } finally {
    for (const route of ALL_ROUTES) wires[route].close();
  }
}

/** IMAP, POP3 and SMTP in turn. */
export async function noopLatency(context: Context): Promise<Row[]> {
  const { main, peers } = context;
  const commands: SmallCommand[] = [
    {
      protocol: 'IMAP',
      login: (route) => imapLogin(route, context.imap[route], main),
      command: imapNoop,
    },
    {
      protocol: 'POP3',
      login: (route) => pop3Login(route, context.pop3[route], main),
      command: pop3Noop,
    },
    {
      protocol: 'SMTP',
      login: (route) => smtpLogin(route, context.smtp[route], main, peers.smtp.ca),
      command: smtpNoop,
    },
  ];
  const rows: Row[] = [];
  for (const small of commands) rows.push(...(await measure(context, small)));
  return rows;
}

/**
 * The round trip of a small command after login (IMAP NOOP), the cost every interactive command
 * pays: one session per route, thousands of round trips in alternating blocks.
 */
import type { Context } from '../context.js';
import { interleaved } from '../interleave.js';
import { imapLogin, imapNoop } from '../protocols/imap.js';
import { atMost, compared, type Row } from '../results.js';
import { median, percentile } from '../stats.js';
import type { Wire } from '../wire.js';

const BLOCK = 250;
const WARM_UP = 200;

async function roundTrips(wire: Wire, count: number, into: number[]): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await imapNoop(wire);
    into.push(performance.now() - started);
  }
}

/** Median and p99 of each route, and what the proxy adds. */
export async function noopLatency(context: Context): Promise<Row[]> {
  const rounds = context.settings.noopRounds;
  context.progress(`NOOP: ${rounds} round trips per route`);
  const wires = {
    direct: await imapLogin('direct', context.imap.direct, context.main),
    proxy: await imapLogin('proxy', context.imap.proxy, context.main),
  };
  try {
    await roundTrips(wires.direct, WARM_UP, []);
    await roundTrips(wires.proxy, WARM_UP, []);
    const samples = { direct: [] as number[], proxy: [] as number[] };
    await interleaved(Math.ceil(rounds / BLOCK), (route) =>
      roundTrips(wires[route], BLOCK, samples[route]),
    );
    const note = `${samples.proxy.length} round trips per route in blocks of ${BLOCK}`;
    return [
      compared(
        {
          id: 'noop_rtt_median',
          label: 'IMAP NOOP round trip, median',
          unit: 'ms',
          direct: median(samples.direct),
          proxy: median(samples.proxy),
          target: atMost(0.1),
          note,
        },
        'added',
      ),
      compared(
        {
          id: 'noop_rtt_p99',
          label: 'IMAP NOOP round trip, p99',
          unit: 'ms',
          direct: percentile(samples.direct, 99),
          proxy: percentile(samples.proxy, 99),
          note,
        },
        'added',
      ),
    ];
  } finally {
    wires.direct.close();
    wires.proxy.close();
  }
}

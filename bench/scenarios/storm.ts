/**
 * 500 logins at the same moment while the stored access token has expired: the proxy must refresh
 * once for all of them, and let every one in promptly. The same storm straight to the server with a
 * valid token shows what the server itself takes.
 */
import type { Context } from '../context.js';
import { sleep } from '../context.js';
import { imapLogin } from '../protocols/imap.js';
import { below, compared, exactly, type Row } from '../results.js';
import { max, median } from '../stats.js';
import type { Wire } from '../wire.js';

interface Storm {
  /** Until the last login's tagged OK. */
  readonly totalMs: number;
  readonly perLoginMs: number[];
  readonly failures: string[];
}

/** Starts `count` logins at once (connect included); every session stays open until all are in. */
async function storm(count: number, login: () => Promise<Wire>): Promise<Storm> {
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const wire = await login();
      return { wire, ms: performance.now() - started };
    }),
  );
  const totalMs = performance.now() - started;
  const perLoginMs: number[] = [];
  const failures: string[] = [];
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') {
      perLoginMs.push(outcome.value.ms);
      outcome.value.wire.close();
    } else failures.push(String((outcome.reason as Error).message ?? outcome.reason));
  }
  return { totalMs, perLoginMs, failures };
}

function describe(result: Storm): string {
  const failed =
    result.failures.length === 0
      ? ''
      : `; ${result.failures.length} failed, first: ${result.failures[0]}`;
  return `per login median ${median(result.perLoginMs).toFixed(0)} ms, slowest ${max(result.perLoginMs).toFixed(0)} ms${failed}`;
}

/** The direct storm first (reference), then the proxy's with an expired token. */
export async function loginStorm(context: Context): Promise<Row[]> {
  const { peers, settings } = context;
  const count = settings.stormLogins;

  context.progress(`storm: ${count} direct logins at once`);
  const direct = await storm(count, () => imapLogin('direct', context.imap.direct, context.main));
  // Dovecot reaps the sessions' processes in the background; let it finish before the next storm.
  await sleep(2_000);

  // The proxy already holds this account's key (same salt), as after hours of running.
  await peers.seed(context.main, { expired: true, keepSalt: true });
  peers.idp.resetTokenRequests();
  context.progress(`storm: ${count} proxy logins at once, token expired`);
  const proxy = await storm(count, () => imapLogin('proxy', context.imap.proxy, context.main));
  const tokenRequests = peers.idp.tokenRequests.total;
  await sleep(2_000);

  // A login that waited longer than the client's stall limit failed with it.
  const failedOrStalled = count - proxy.perLoginMs.length;
  return [
    compared(
      {
        id: 'storm_all_in',
        label: `${count} simultaneous logins, all in`,
        unit: 's',
        direct: direct.totalMs / 1000,
        proxy: proxy.totalMs / 1000,
        note: `direct (valid token): ${describe(direct)}; proxy (expired token): ${describe(proxy)}`,
      },
      'ratio',
    ),
    {
      id: 'storm_all_in_proxy',
      label: `${count} logins through the proxy, all in`,
      unit: 's',
      proxy: proxy.totalMs / 1000,
      target: below(3, 0),
    },
    {
      id: 'storm_token_requests',
      label: `${count}-login storm: token requests`,
      unit: 'count',
      proxy: tokenRequests,
      target: exactly(1),
    },
    {
      id: 'storm_failed_or_stalled',
      label: `${count}-login storm: failed or stalled`,
      unit: 'count',
      proxy: failedOrStalled,
      target: exactly(0),
    },
  ];
}

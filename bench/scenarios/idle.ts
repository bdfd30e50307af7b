/**
 * 2,000 authenticated IMAP sessions sitting idle through the proxy: what they cost it in memory
 * and in CPU while nothing happens. Measured on a freshly started proxy (the cost of the sessions
 * themselves, which the target is about) and, in a full run, also on the proxy that has just been
 * through every other scenario (what the allocator kept from the bulk transfers and the storm).
 */
import { proxyPid, sleep, type Context } from '../context.js';
import { cpuPercentOver, MB, residentBytes } from '../process-stats.js';
import { imapLogin } from '../protocols/imap.js';
import { atMost, type Row } from '../results.js';
import type { Wire } from '../wire.js';

/** Logins in flight while the sessions are opened; the count is about holding, not a storm. */
const OPENING_CONCURRENCY = 50;

/** Whether the proxy was just started or has been through the other scenarios. */
export type ProxyHistory = 'fresh' | 'after-load';

/** Opens the sessions, measures, and closes them again. */
export async function idleSessions(context: Context, history: ProxyHistory): Promise<Row[]> {
  const pid = proxyPid(context);
  const count = context.settings.idleSessions;
  const before = residentBytes(pid);
  context.progress(`idle: opening ${count} sessions`);
  const wires: Wire[] = [];
  const started = performance.now();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: OPENING_CONCURRENCY }, async () => {
        while (next < count) {
          next += 1;
          wires.push(await imapLogin('proxy', context.imap.proxy, context.main));
        }
      }),
    );
    const openingSeconds = (performance.now() - started) / 1000;
    context.progress(
      `idle: ${count} sessions open after ${openingSeconds.toFixed(1)} s; measuring`,
    );
    await sleep(2_000);
    const rss = residentBytes(pid);
    const cpu = await cpuPercentOver(pid, context.settings.idleWindowMs);
    const rssAfterWindow = residentBytes(pid);
    const fresh = history === 'fresh';
    const suffix = fresh ? '' : '_after_load';
    const which = fresh ? 'fresh proxy' : 'after the other scenarios';
    return [
      {
        id: `idle_sessions_rss${suffix}`,
        label: `${count} idle IMAP sessions, ${which}: RSS`,
        unit: 'MB',
        proxy: Math.max(rss, rssAfterWindow) / MB,
        ...(fresh && { target: atMost(200, 0) }),
        note: `${(before / MB).toFixed(0)} MB before opening them; ${((Math.max(rss, rssAfterWindow) - before) / count / 1024).toFixed(1)} KiB per session; opened in ${openingSeconds.toFixed(1)} s`,
      },
      {
        id: `idle_sessions_cpu${suffix}`,
        label: `${count} idle IMAP sessions, ${which}: CPU`,
        unit: '%',
        proxy: cpu,
        note: `of one core, over ${context.settings.idleWindowMs / 1000} s`,
      },
    ];
  } finally {
    for (const wire of wires) wire.close();
    await sleep(1_000);
  }
}

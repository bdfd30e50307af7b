/**
 * Login latency with a valid token: from connect to the tagged OK. Direct is a TLS connection
 * with `AUTHENTICATE XOAUTH2` (resuming TLS sessions, as the proxy does upstream); the proxy's is
 * a plain `LOGIN` that it turns into the same upstream login with its cached key.
 */
import type { Context } from '../context.js';
import { interleaved, type RouteName } from '../interleave.js';
import { imapLogin } from '../protocols/imap.js';
import { atMost, compared, type Row } from '../results.js';
import { median, percentile } from '../stats.js';

const WARM_UP = 5;

/** Median and p90 of each route, and what the proxy adds. */
export async function cachedLogin(context: Context): Promise<Row[]> {
  const login = async (route: RouteName): Promise<number> => {
    const started = performance.now();
    const wire = await imapLogin(route, context.imap[route], context.main);
    const ms = performance.now() - started;
    wire.close();
    return ms;
  };
  for (let i = 0; i < WARM_UP; i += 1) {
    await login('direct');
    await login('proxy');
  }
  context.progress(`logins: ${context.settings.logins} per route`);
  const samples = await interleaved(context.settings.logins, login);
  const note = `${samples.proxy.length} logins per route, one at a time`;
  return [
    compared(
      {
        id: 'login_cached_median',
        label: 'IMAP login, cached token, median',
        unit: 'ms',
        direct: median(samples.direct),
        proxy: median(samples.proxy),
        target: atMost(5, 1),
        note,
      },
      'added',
    ),
    compared(
      {
        id: 'login_cached_p90',
        label: 'IMAP login, cached token, p90',
        unit: 'ms',
        direct: percentile(samples.direct, 90),
        proxy: percentile(samples.proxy, 90),
        note,
      },
      'added',
    ),
  ];
}

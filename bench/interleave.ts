/**
 * The routes' runs alternate, so whatever else the machine is doing falls on all alike: ABBA
 * order (direct, proxy, proxy, direct, ...; with stunnel ABCCBA) also cancels a steady drift
 * within each pair of rounds. Ratios are taken per adjacent pair, then the median of those is
 * reported.
 */
import { median } from './stats.js';

/**
 * `direct`: TLS and XOAUTH2 straight to the server; `proxy`: plain text and a password to the
 * proxy; `stunnel`: plain text and XOAUTH2 to stunnel, which does the TLS (the floor).
 */
export type RouteName = 'direct' | 'proxy' | 'stunnel';

/** The routes most scenarios compare. */
export const DIRECT_AND_PROXY: readonly RouteName[] = ['direct', 'proxy'];
/** Every route, for the measurements that are read against the floor too. */
export const ALL_ROUTES: readonly RouteName[] = ['direct', 'proxy', 'stunnel'];

/** Samples of each route; the i-th of one was taken next to the i-th of the others. */
export type Paired<T> = Record<RouteName, T[]>;

/** Runs `measure` `repetitions` times for each of `routes`, interleaved; other routes stay empty. */
export async function interleaved<T>(
  repetitions: number,
  measure: (route: RouteName) => Promise<T>,
  routes: readonly RouteName[] = DIRECT_AND_PROXY,
): Promise<Paired<T>> {
  const result: Paired<T> = { direct: [], proxy: [], stunnel: [] };
  for (let i = 0; i < repetitions; i += 1) {
    const order = i % 2 === 0 ? routes : [...routes].reverse();
    for (const route of order) result[route].push(await measure(route));
  }
  return result;
}

/** The median of proxy/`against` over the i-th pair of samples. */
export function pairedRatio(samples: Paired<number>, against: RouteName = 'direct'): number {
  return median(samples.proxy.map((proxy, i) => proxy / samples[against][i]!));
}

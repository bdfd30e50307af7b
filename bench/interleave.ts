/**
 * Direct and proxied runs alternate, so whatever else the machine is doing falls on both alike:
 * ABBA order (direct, proxy, proxy, direct, ...) also cancels a steady drift within each pair of
 * pairs. Ratios are taken per adjacent pair, then the median of those is reported.
 */
import { median } from './stats.js';

/** `direct`: TLS and XOAUTH2 straight to the server; `proxy`: plain text and a password to the proxy. */
export type RouteName = 'direct' | 'proxy';

/** Samples of each route; the i-th of one was taken next to the i-th of the other. */
export interface Paired<T> {
  readonly direct: T[];
  readonly proxy: T[];
}

/** Runs `measure` `repetitions` times for each route, interleaved. */
export async function interleaved<T>(
  repetitions: number,
  measure: (route: RouteName) => Promise<T>,
): Promise<Paired<T>> {
  const result: Paired<T> = { direct: [], proxy: [] };
  for (let i = 0; i < repetitions; i += 1) {
    const order: RouteName[] = i % 2 === 0 ? ['direct', 'proxy'] : ['proxy', 'direct'];
    for (const route of order) result[route].push(await measure(route));
  }
  return result;
}

/** The median of proxy/direct over the i-th pair of samples. */
export function pairedRatio(samples: Paired<number>): number {
  return median(samples.proxy.map((proxy, i) => proxy / samples.direct[i]!));
}

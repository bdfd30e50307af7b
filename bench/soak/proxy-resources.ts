/** The proxy's footprint read from /proc (Linux): resident memory and open file descriptors. */
import { readdirSync, readlinkSync } from 'node:fs';
import { sleep } from '../context.js';
import { MB, residentBytes } from '../process-stats.js';

/** One reading of the proxy's footprint. */
export interface Footprint {
  readonly rssMB: number;
  readonly fds: number;
  /** Of `fds`, how many are sockets. */
  readonly sockets: number;
}

/** Reads VmRSS and counts /proc/<pid>/fd entries. */
export function footprint(pid: number): Footprint {
  let fds = 0;
  let sockets = 0;
  for (const entry of readdirSync(`/proc/${pid}/fd`)) {
    fds += 1;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${entry}`).startsWith('socket:')) sockets += 1;
    } catch {
      // closed between the listing and the read
    }
  }
  return { rssMB: residentBytes(pid) / MB, fds, sockets };
}

/** `rss 61.2 MB, fds 24 (sockets 9)`. */
export function describeFootprint(reading: Footprint): string {
  return `rss ${reading.rssMB.toFixed(1)} MB, fds ${reading.fds} (sockets ${reading.sockets})`;
}

/**
 * Waits up to `timeoutMs` for the descriptor count to come down to `limit` (closing is
 * asynchronous on both sides); returns the last reading either way.
 */
export async function settledFootprint(
  pid: number,
  limit: number,
  timeoutMs: number,
): Promise<Footprint> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reading = footprint(pid);
    if (reading.fds <= limit || performance.now() >= deadline) return reading;
    await sleep(250);
  }
}

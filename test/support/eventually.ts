import { vi } from 'vitest';

/**
 * `vi.waitFor` with room for a loaded machine (two suites on two shared cores): its default of
 * one second is a guess at speed, and a test waits for behaviour, not for speed.
 */
export function eventually<T>(check: () => T | Promise<T>): Promise<T> {
  return vi.waitFor(check, { timeout: 15_000, interval: 25 });
}

/**
 * Derived keys kept in memory so only the first login after start pays for PBKDF2.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { deriveKey } from './key-derivation.js';

/** The derivation a {@link KeyCache} runs on a miss; {@link deriveKey} unless a test counts calls. */
export type DeriveKeyFunction = (
  password: string,
  salt: Buffer,
  iterations: number,
) => Promise<Buffer>;

/** Options for {@link KeyCache}. */
export interface KeyCacheOptions {
  /** Most keys kept; the least recently used goes first. Default 256. */
  readonly maxEntries?: number;
  readonly derive?: DeriveKeyFunction;
}

/**
 * An LRU cache of derived keys, keyed by (password, salt, iterations).
 *
 * The password itself is never stored: entries are named by an HMAC of it under a key that exists
 * only in this process, so a heap dump does not give the password or a cheap way to test guesses.
 * Concurrent requests for the same key share one derivation (twenty clients logging in at once cost
 * one PBKDF2 run, not twenty). Failed derivations are not cached.
 */
export class KeyCache {
  private readonly entries = new Map<string, Promise<Buffer>>();
  private readonly nameKey = randomBytes(32);
  private readonly maxEntries: number;
  private readonly derive: DeriveKeyFunction;

  constructor(options: KeyCacheOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 256);
    this.derive = options.derive ?? deriveKey;
  }

  /**
   * The key for this password, salt and iteration count: from memory, from a derivation already
   * running, or from a new one. Each caller gets its own copy of the key bytes.
   */
  async get(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
    const name = this.entryName(password, salt, iterations);
    let entry = this.entries.get(name);
    if (entry) {
      this.entries.delete(name);
      this.entries.set(name, entry);
    } else {
      entry = this.derive(password, salt, iterations);
      this.entries.set(name, entry);
      this.evictOverflow();
      entry.catch(() => {
        if (this.entries.get(name) === entry) this.entries.delete(name);
      });
    }
    return Buffer.from(await entry);
  }

  /** Number of keys held or being derived. */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every key (derivations already running still answer their callers). */
  clear(): void {
    this.entries.clear();
  }

  private entryName(password: string, salt: Buffer, iterations: number): string {
    const passwordTag = createHmac('sha256', this.nameKey)
      .update(password, 'utf8')
      .digest('base64');
    return `${passwordTag}:${salt.toString('base64')}:${iterations}`;
  }

  private evictOverflow(): void {
    for (const name of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) return;
      this.entries.delete(name);
    }
  }
}

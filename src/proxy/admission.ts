import { isLoopbackHost } from '../config/loopback.js';
import type { PreAuthLimits } from './session.js';

/** Why a connection was turned away at the door. */
export type RefusalReason = 'too-many-connections' | 'too-many-from-address';

/**
 * A connection let in (call `release` once it has logged in or gone), or turned away. `makeRoom`
 * says how to send the connection away for a newer one when the proxy is full: it returns false
 * when it cannot (its login is under way).
 */
export type Admission =
  | { readonly admitted: true; release(): void; makeRoom(evict: () => boolean): void }
  | { readonly admitted: false; readonly reason: RefusalReason; readonly limit: number };

/**
 * Counts connections that have not logged in yet, so a flood of clients that connect and say
 * nothing (or guess passwords slowly) cannot use up file descriptors and memory. One gate is shared
 * by every listener, so the total is the proxy's, not a port's, and it outlives config reloads.
 *
 * Per-address counting skips loopback sources: every local program connects from 127.0.0.1, so a
 * per-address limit there would only be a smaller total and would refuse a legitimate burst of
 * local logins (fetchmail and mbsync opening many folders at once).
 */
export class PreAuthGate {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  /** Admitted connections, oldest first, with how to send each away (once it says). */
  private readonly admitted = new Map<object, (() => boolean) | undefined>();

  constructor(
    private limits: Pick<
      PreAuthLimits,
      'maxPreAuthConnections' | 'maxPreAuthConnectionsPerAddress'
    >,
  ) {}

  /** Connections currently admitted and not yet released. */
  get count(): number {
    return this.total;
  }

  /** Admits a new connection from `remoteAddress` (undefined when the socket is already gone). */
  admit(remoteAddress: string | undefined): Admission {
    const { maxPreAuthConnections, maxPreAuthConnectionsPerAddress } = this.limits;
    if (this.total >= maxPreAuthConnections && !this.evictOldest())
      return { admitted: false, reason: 'too-many-connections', limit: maxPreAuthConnections };
    const source = sourceKey(remoteAddress);
    const fromSource = source === undefined ? 0 : (this.perAddress.get(source) ?? 0);
    if (source !== undefined && fromSource >= maxPreAuthConnectionsPerAddress) {
      return {
        admitted: false,
        reason: 'too-many-from-address',
        limit: maxPreAuthConnectionsPerAddress,
      };
    }

    this.total += 1;
    if (source !== undefined) this.perAddress.set(source, fromSource + 1);
    const entry = {};
    this.admitted.set(entry, undefined);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.admitted.delete(entry);
      this.total -= 1;
      if (source === undefined) return;
      const left = (this.perAddress.get(source) ?? 1) - 1;
      if (left === 0) this.perAddress.delete(source);
      else this.perAddress.set(source, left);
    };
    return {
      admitted: true,
      release,
      makeRoom: (evict) => {
        if (!released)
          this.admitted.set(entry, () => {
            if (!evict()) return false;
            release();
            return true;
          });
      },
    };
  }

  /**
   * Full: sends away the oldest connection that has kept us waiting for seconds, so that clients that
   * connect and dawdle (a byte every few seconds) cannot keep every slot from a real login. Each
   * of them is cut at the login deadline anyway; this keeps the door open meanwhile.
   */
  private evictOldest(): boolean {
    for (const evict of this.admitted.values()) if (evict?.() === true) return true;
    return false;
  }
}

/**
 * The per-address key: IPv4 clients on a dual-stack socket appear as `::ffff:a.b.c.d` and count as
 * `a.b.c.d`; loopback sources are not counted per address (undefined). A socket that closed before
 * its address was read counts under one shared key, so it cannot escape the limit.
 */
function sourceKey(remoteAddress: string | undefined): string | undefined {
  if (remoteAddress === undefined) return 'unknown';
  const address = remoteAddress.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return isLoopbackHost(address) ? undefined : address;
}

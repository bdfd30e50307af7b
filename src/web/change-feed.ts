import type { DaemonPort } from './daemon-port.js';

/** How often the accounts are compared while a page is open: catches a second login joining a wait. */
const CHECK_MS = 1_500;

/**
 * Tells open pages that the accounts changed: at once on the token manager's events, and by
 * comparing the status every {@link CHECK_MS} while at least one page listens.
 */
export class ChangeFeed {
  private readonly listeners = new Set<() => void>();
  private last = '';
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly port: DaemonPort) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) {
      void this.check();
      this.unsubscribe = this.port.onChange(() => void this.check());
      this.timer = setInterval(() => void this.check(), CHECK_MS);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0) return;
      clearInterval(this.timer);
      this.unsubscribe?.();
    };
  }

  private async check(): Promise<void> {
    const now = JSON.stringify(await this.port.status().catch(() => []));
    if (now === this.last) return;
    const first = this.last === '';
    this.last = now;
    if (!first) for (const listener of this.listeners) listener();
  }
}

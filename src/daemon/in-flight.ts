/**
 * Work a stopping daemon must let finish: a login may be in the middle of a token refresh whose
 * rotated refresh token has to reach the token store, or the old one (already revoked by a
 * Microsoft-like provider) is all that is left after a restart. Each piece of work carries a label
 * (the account), so the stop can leave out work that cannot end in a token write.
 */
export class InFlight {
  private readonly running = new Map<Promise<unknown>, string>();

  /** Counts `work` under `label` until it settles; returns it unchanged. */
  track<T>(work: Promise<T>, label: string): Promise<T> {
    this.running.set(work, label);
    const done = (): void => {
      this.running.delete(work);
    };
    work.then(done, done);
    return work;
  }

  get size(): number {
    return this.running.size;
  }

  /**
   * Resolves once nothing tracked is running, including work started while waiting, except work
   * whose label `ignore` accepts.
   */
  async settled(ignore: (label: string) => boolean = () => false): Promise<void> {
    for (;;) {
      const waitFor = [...this.running].filter(([, label]) => !ignore(label)).map(([work]) => work);
      if (waitFor.length === 0) return;
      await Promise.allSettled(waitFor);
    }
  }
}

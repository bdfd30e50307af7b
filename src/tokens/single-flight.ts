/**
 * One piece of work per key at a time: whoever asks while it runs gets the same promise, and the
 * key is free again once it settles. Used for everything done once per account and shared by the
 * logins that need it (a refresh, a token request, the start of an authorisation).
 *
 * A `tag` narrows the sharing: a caller joins only work of the same tag, and otherwise waits for
 * it to end and starts its own (a password grant is shared only by logins with the same password,
 * and the provider judges each password in turn).
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, { readonly tag: string; readonly work: Promise<T> }>();

  /** The work running under `key` (and `tag`), or `start()`'s, shared until it settles. */
  run(key: string, start: () => Promise<T>, tag = ''): Promise<T> {
    const current = this.flights.get(key);
    if (current?.tag === tag) return current.work;
    if (current) {
      const again = (): Promise<T> => this.run(key, start, tag);
      return current.work.then(again, again);
    }
    const work = start().finally(() => {
      if (this.flights.get(key)?.work === work) this.flights.delete(key);
    });
    this.flights.set(key, { tag, work });
    return work;
  }

  /** Settles once the work under `key`, if any, has ended, however it ended. */
  async idle(key: string): Promise<void> {
    const current = this.flights.get(key);
    if (current) await current.work.then(noop, noop);
  }

  /** The keys with work running. */
  keys(): IterableIterator<string> {
    return this.flights.keys();
  }
}

function noop(): void {}

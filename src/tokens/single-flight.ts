/**
 * One piece of work per key at a time: whoever asks while it runs gets the same promise, and the
 * key is free again once it settles. Used for everything done once per account and shared by the
 * logins that need it (a refresh, an app-only token request, the start of an authorisation).
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  /** The work running under `key`, or `start()`'s, shared until it settles. */
  run(key: string, start: () => Promise<T>): Promise<T> {
    let flight = this.flights.get(key);
    if (!flight) {
      flight = start().finally(() => {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      });
      this.flights.set(key, flight);
    }
    return flight;
  }

  /** The keys with work running. */
  keys(): IterableIterator<string> {
    return this.flights.keys();
  }
}

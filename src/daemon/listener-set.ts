import type { Logger } from 'pino';
import type { ServerConfig } from '../config/types.js';
import { startListener, type Listener, type ListenerOptions } from '../proxy/listener.js';
import { planListeners } from './listener-plan.js';

/** What a reload did to the ports, by section name. */
export interface PortChanges {
  /** Ports bound for new sections. */
  readonly bound: readonly string[];
  /** Sections whose ports were closed (their established sessions go on). */
  readonly unbound: readonly string[];
  /** Sections kept on their port whose settings changed; new connections use the new settings. */
  readonly updated: readonly string[];
}

/** A local port could not be bound (in use, not permitted, address not on this machine). */
export class ListenError extends Error {
  constructor(
    readonly server: ServerConfig,
    cause: NodeJS.ErrnoException,
  ) {
    const why =
      cause.code === 'EADDRINUSE'
        ? 'the port is already in use (is another proxy running?)'
        : cause.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : cause.code === 'EADDRNOTAVAIL'
            ? 'the address is not one of this machine'
            : cause.message;
    super(
      `[${server.section}]: cannot listen on ${server.localAddress}:${server.localPort}: ${why}`,
    );
    this.name = 'ListenError';
  }
}

/**
 * The daemon's ports: the listeners accepting connections, and the retired ones (closed by a
 * reload) whose established sessions still run, so that a stop reaches those sessions too.
 */
export class ListenerSet {
  /** Listeners accepting connections, with the options each was last given. */
  private readonly active = new Map<Listener, ListenerOptions>();
  private readonly retired = new Set<Listener>();

  constructor(private readonly log: Logger) {}

  /** The listeners accepting connections. */
  get listeners(): Listener[] {
    return [...this.active.keys()];
  }

  /** Every listener with connections to look after: accepting, or retired with sessions left. */
  private get all(): Listener[] {
    return [...this.active.keys(), ...this.retired];
  }

  /** Binds every section at start-up; on a failure, what was bound is closed again. */
  async bindAll(sections: readonly ListenerOptions[]): Promise<void> {
    try {
      for (const options of sections) this.active.set(await this.bind(options), options);
    } catch (err) {
      await Promise.all(this.listeners.map((listener) => listener.close()));
      this.active.clear();
      throw err;
    }
  }

  /**
   * Brings the ports in line with a reloaded config (`prepared` holds the options for each of its
   * sections): see {@link planListeners}. All or nothing: when a new port cannot be bound, the
   * ones bound for it are closed, the ones it closed are bound again, and the error is thrown.
   *
   * @throws ListenError
   */
  async apply(prepared: ReadonlyMap<ServerConfig, ListenerOptions>): Promise<PortChanges> {
    const plan = planListeners(this.listeners, [...prepared.keys()]);
    // Closed ports first, so a section that moved to another address on the same port can bind.
    const unbound = plan.unbind.map((listener) => ({
      listener,
      options: this.active.get(listener)!,
    }));
    for (const { listener } of unbound) {
      await listener.stopAccepting();
      this.retire(listener);
    }
    const bound: Array<[Listener, ListenerOptions]> = [];
    try {
      for (const server of plan.bind) {
        const options = prepared.get(server)!;
        bound.push([await this.bind(options), options]);
      }
    } catch (err) {
      await this.rollBack(bound, unbound);
      throw err;
    }
    for (const [listener, options] of bound) this.active.set(listener, options);
    for (const { listener, server } of plan.keep) {
      const options = prepared.get(server)!;
      listener.update(options);
      this.active.set(listener, options);
    }
    return {
      bound: plan.bind.map((server) => server.section),
      unbound: plan.unbind.map((listener) => listener.server.section),
      updated: plan.keep.filter((kept) => kept.changed).map((kept) => kept.server.section),
    };
  }

  /** `IMAP 127.0.0.1:1993 → outlook.office365.com:993, ...`, for logs and the service manager. */
  describe(): string {
    return this.listeners
      .map(
        ({ server, address }) =>
          `${server.protocol} ${address.address}:${address.port} → ${server.serverAddress}:${server.serverPort}`,
      )
      .join(', ');
  }

  /** Connections open on every port, pre-auth and spliced. */
  openConnections(): number {
    return this.all.reduce((open, listener) => open + listener.connections.size, 0);
  }

  /** Closes every port; established connections are left alone. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.all.map((listener) => listener.stopAccepting()));
  }

  /** Tells every client that has not logged in that the proxy is shutting down. */
  sendAwayPreAuth(): void {
    for (const listener of this.all) listener.sendAwayPreAuth();
  }

  /** Resolves once no connection is open on any port. */
  async drained(): Promise<void> {
    await Promise.all(this.all.map((listener) => listener.drained()));
  }

  /** Cuts every connection still open. */
  destroyAll(): void {
    for (const listener of this.all) listener.destroyAll();
  }

  private async bind(options: ListenerOptions): Promise<Listener> {
    const { server } = options;
    const listener = await startListener(options).catch((err: NodeJS.ErrnoException) => {
      throw new ListenError(server, err);
    });
    this.log.info(
      {
        event: 'listening',
        section: server.section,
        protocol: server.protocol,
        address: server.localAddress,
        port: server.localPort,
        upstream: `${server.serverAddress}:${server.serverPort}`,
      },
      `listening on ${server.localAddress}:${server.localPort}`,
    );
    return listener;
  }

  private retire(listener: Listener): void {
    this.active.delete(listener);
    this.retired.add(listener);
    void listener.drained().then(() => this.retired.delete(listener));
  }

  private async rollBack(
    bound: ReadonlyArray<[Listener, ListenerOptions]>,
    unbound: ReadonlyArray<{ listener: Listener; options: ListenerOptions }>,
  ): Promise<void> {
    for (const [listener] of bound) {
      await listener.stopAccepting();
      listener.destroyAll();
    }
    for (const { listener, options } of unbound) {
      try {
        this.active.set(await this.bind(options), options);
      } catch (err) {
        this.log.error(
          { event: 'rebind_failed', section: listener.server.section, err: (err as Error).message },
          'could not listen again on a port of the previous configuration',
        );
      }
    }
  }
}

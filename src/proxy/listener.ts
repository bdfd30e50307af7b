import net from 'node:net';
import type tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/types.js';
import type { Protocol, ServerConfig } from '../config/types.js';
import { PreAuthGate, type Admission } from './admission.js';
import { EarlyUpstream } from './early-upstream.js';
import { farewell } from './farewells.js';
import { startLocalTls } from './local-tls.js';
import { PreAuthClient } from './pre-auth-client.js';
import { readProxyHeader } from './proxy-protocol/read-header.js';
import { fromTrustedBalancer } from './proxy-protocol/trusted.js';
import type { PreAuthLimits, ProtocolSession, SessionContext } from './session.js';
import { splice } from './splice.js';
import { tune, type UpstreamTarget, type UpstreamTlsOptions } from './upstream.js';

export interface ListenerOptions {
  readonly server: ServerConfig;
  readonly session: ProtocolSession;
  readonly auth: Authenticator;
  readonly log: Logger;
  readonly limits: PreAuthLimits;
  readonly upstream: UpstreamTarget;
  readonly upstreamTls: UpstreamTlsOptions;
  /** Implicit TLS towards clients (certificate configured, no local STARTTLS). */
  readonly localTls?:
    { readonly context: tls.SecureContext; readonly implicit: boolean } | undefined;
  readonly hostname: string;
  /** See {@link SessionContext.plaintextLoginsFromNetwork}; off unless the config allows it. */
  readonly plaintextLoginsFromNetwork?: boolean;
  /**
   * Counts connections before their login; the daemon shares one across every listener. Default:
   * a gate of this listener's own, from `limits`.
   */
  readonly gate?: PreAuthGate;
  /**
   * Open the IMAP/POP3 upstream as a client connects (`early-upstream.ts`). Default true; off for
   * state-machine tests whose scripted upstream takes one connection per login.
   */
  readonly earlyUpstream?: boolean;
  /** Told of every accepted connection (the metrics count them and their bytes). */
  readonly onConnection?: ((socket: net.Socket, protocol: Protocol) => void) | undefined;
}

/** A bound local port and the connections it is serving. */
export interface Listener {
  /** The section new connections are served by (see {@link Listener.update}). */
  readonly server: ServerConfig;
  readonly address: net.AddressInfo;
  /** Connections currently open, pre-auth or spliced. */
  readonly connections: ReadonlySet<net.Socket>;
  /** Connections still before their login (in the TLS handshake or the protocol conversation). */
  readonly preAuthCount: number;
  /**
   * Serves new connections with `options` (a reloaded section on the same address and port):
   * protocol, upstream, CA, local certificate, limits. Established connections keep what they
   * started with.
   */
  update(options: ListenerOptions): void;
  /** Stops accepting and releases the port; open connections are left alone. */
  stopAccepting(): Promise<void>;
  /**
   * Ends every conversation that has not logged in with the protocol's "shutting down" (a TLS
   * handshake still under way is cut off). Spliced sessions are not touched.
   */
  sendAwayPreAuth(): void;
  /** Resolves once no connection is open. */
  drained(): Promise<void>;
  /** Cuts every open connection, both sides of spliced ones. */
  destroyAll(): void;
  /** Stops accepting; resolves when every open connection has closed. */
  close(): Promise<void>;
}

/**
 * A burst of mail clients (fetchmail from cron, a client opening many folders) must never find the
 * listen queue full; the kernel caps this at net.core.somaxconn anyway.
 */
const LISTEN_BACKLOG = 1024;

/** How long a client that was turned away may take to read why before it is cut off. */
const REFUSAL_GRACE_MS = 2_000;

/** At most one "connection refused" warning this often; the rest are counted into the next one. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** How long a trusted load balancer may take to send its PROXY header. */
const PROXY_HEADER_TIMEOUT_MS = 5_000;

/** One accepted connection and how far it got. */
interface Connection {
  /** The socket as accepted (plain TCP). */
  readonly socket: net.Socket;
  /** The real client: from the PROXY header of a trusted balancer, else the socket's peer. */
  remoteAddress: string | undefined;
  /** The balancer the connection came through, when a PROXY header named the client. */
  via?: string | undefined;
  /** What the session talks to: `socket`, or the TLS socket over it on an implicit-TLS port. */
  client?: net.Socket;
  phase: 'handshake' | 'pre-auth' | 'spliced' | 'refused';
  upstream?: net.Socket;
  /** The options the connection was accepted under. */
  readonly options: ListenerOptions;
}

/**
 * Binds one `[PROTOCOL-port]` section and runs every accepted connection through its session.
 *
 * Implicit TLS is done here, over a plain TCP server, rather than with a `tls.Server`: the
 * certificate (and whether the port is TLS at all) can then change on a config reload without
 * closing the port.
 */
export function startListener(initial: ListenerOptions): Promise<Listener> {
  let current = initial;
  let gate = initial.gate ?? new PreAuthGate(initial.limits);
  const connections = new Map<net.Socket, Connection>();
  const drainWaiters = new Set<() => void>();
  const refusals = { logged: 0, unlogged: 0 };

  const forget = (connection: Connection): void => {
    connections.delete(connection.socket);
    if (connections.size === 0) for (const wake of drainWaiters) wake();
  };

  const onSocket = (socket: net.Socket): void => {
    const options = current;
    const connection: Connection = {
      socket,
      remoteAddress: socket.remoteAddress,
      phase: 'handshake',
      options,
    };
    connections.set(socket, connection);
    socket.once('close', () => forget(connection));
    // Errors are logged per connection once it is served; before that (a refusal, a reset during
    // the handshake) there is nothing to say beyond what the close says.
    socket.on('error', () => undefined);
    tune(socket);
    options.onConnection?.(socket, options.server.protocol);
    if (fromTrustedBalancer(options.server, socket.remoteAddress)) void learnClient(connection);
    else admit(connection);
  };

  /** Takes the real client's address from the balancer's PROXY header, then admits it. */
  const learnClient = async (connection: Connection): Promise<void> => {
    const { socket, options } = connection;
    const reading = await readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS);
    if (socket.destroyed) return;
    if (!reading.ok) {
      options.log.warn(
        { event: 'proxy_header_refused', remote: socket.remoteAddress, reason: reading.reason },
        `refused a connection from load balancer ${socket.remoteAddress}: ${reading.reason} ` +
          `(proxy_protocol_from in [${options.server.section}] says it sends one)`,
      );
      socket.destroy();
      return;
    }
    if (reading.header.kind === 'proxied') {
      connection.via = socket.remoteAddress;
      connection.remoteAddress = reading.header.address;
    }
    admit(connection);
  };

  const admit = (connection: Connection): void => {
    const { socket, options } = connection;
    const admission = gate.admit(connection.remoteAddress);
    if (!admission.admitted) {
      refuse(connection, admission);
      return;
    }
    // Normally released when the conversation ends; this covers a session that never got going.
    socket.once('close', admission.release);
    admission.makeRoom(() => makeRoom(connection));
    void accept(connection, admission.release).catch((err: unknown) => {
      admission.release();
      options.log.error({ event: 'session_error', err }, 'connection failed unexpectedly');
      socket.destroy();
    });
  };

  const refuse = (
    connection: Connection,
    refusal: Exclude<Admission, { admitted: true }>,
  ): void => {
    const { socket, options } = connection;
    connection.phase = 'refused';
    const now = Date.now();
    if (now - refusals.logged >= REFUSAL_LOG_INTERVAL_MS) {
      options.log.warn(
        {
          event: 'connection_refused',
          reason: refusal.reason,
          limit: refusal.limit,
          remote: connection.remoteAddress,
          alsoRefusedSinceLastWarning: refusals.unlogged,
        },
        `refused a connection: ${refusal.reason === 'too-many-connections' ? 'too many connections before login' : 'too many connections before login from one address'} (limit ${refusal.limit})`,
      );
      refusals.logged = now;
      refusals.unlogged = 0;
    } else {
      refusals.unlogged += 1;
    }
    // On an implicit-TLS port the refusal could only be read after a full handshake, which is the
    // very work the limit is there to avoid; such clients see the connection close.
    if (options.localTls?.implicit !== true)
      socket.write(farewell(options.server.protocol, refusal.reason, options.hostname));
    socket.resume();
    socket.end();
    setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS).unref();
  };

  /** Sends `connection` away for a newer one, if it has kept us waiting (see PreAuthGate). */
  const makeRoom = (connection: Connection): boolean => {
    if (connection.phase !== 'pre-auth' || connection.client === undefined) return false;
    const { server: section, hostname } = connection.options;
    return (
      PreAuthClient.on(connection.client)?.sendAwayIfDawdling(
        farewell(section.protocol, 'too-many-connections', hostname),
      ) ?? false
    );
  };

  const accept = async (connection: Connection, release: () => void): Promise<void> => {
    const { socket, options } = connection;
    let client: net.Socket = socket;
    if (options.localTls?.implicit === true) {
      // The idle limit covers the handshake too: a client that connects and sends nothing holds a slot.
      const silent = (): void => void socket.destroy();
      socket.setTimeout(options.limits.idleTimeoutMs, silent);
      const secure = await startLocalTls(socket, options.localTls.context, options.log);
      socket.setTimeout(0, silent);
      if (secure === undefined) {
        release();
        return;
      }
      client = secure;
    }
    connection.client = client;
    connection.phase = 'pre-auth';
    await serve(connection, client, release);
  };

  // Half-open connections are kept: a client that sends its last commands and then shuts its
  // side (`printf ... | nc -N`, a script's pipe) still gets every answer before we close ours.
  const server = net.createServer({ allowHalfOpen: true }, onSocket);

  const stopAccepting = (): Promise<void> => {
    if (!server.listening) return Promise.resolve();
    return new Promise((done) => {
      server.close();
      // `close`'s callback waits for every connection; the port itself is free at once.
      setImmediate(done);
    });
  };

  const drained = (): Promise<void> => {
    if (connections.size === 0) return Promise.resolve();
    return new Promise((done) => {
      const wake = (): void => {
        drainWaiters.delete(wake);
        done();
      };
      drainWaiters.add(wake);
    });
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(
      {
        host: initial.server.localAddress,
        port: initial.server.localPort,
        backlog: LISTEN_BACKLOG,
      },
      () => {
        server.off('error', reject);
        server.on('error', (err) =>
          current.log.error({ event: 'listener_error', err }, 'listener error'),
        );
        resolve({
          get server() {
            return current.server;
          },
          address: server.address() as net.AddressInfo,
          get connections() {
            return new Set(connections.keys());
          },
          get preAuthCount() {
            let count = 0;
            for (const connection of connections.values())
              if (connection.phase === 'handshake' || connection.phase === 'pre-auth') count += 1;
            return count;
          },
          update(options) {
            current = options;
            gate = options.gate ?? gate;
          },
          stopAccepting,
          sendAwayPreAuth() {
            for (const connection of connections.values()) {
              if (connection.phase === 'handshake') connection.socket.destroy();
              if (connection.phase !== 'pre-auth' || connection.client === undefined) continue;
              const { server: section, hostname } = connection.options;
              PreAuthClient.on(connection.client)?.sendAway(
                farewell(section.protocol, 'shutting-down', hostname),
              );
            }
          },
          drained,
          destroyAll() {
            for (const connection of connections.values()) {
              connection.upstream?.destroy();
              connection.client?.destroy();
              connection.socket.destroy();
            }
          },
          async close() {
            await stopAccepting();
            await drained();
          },
        });
      },
    );
  });
}

async function serve(
  connection: Connection,
  socket: net.Socket,
  release: () => void,
): Promise<void> {
  const { options } = connection;
  const id = randomBytes(4).toString('hex');
  const log = options.log.child({
    conn: id,
    protocol: options.server.protocol,
    port: options.server.localPort,
    remote: connection.remoteAddress,
  });
  log.debug({ event: 'connect', via: connection.via }, 'client connected');
  socket.on('error', (err) =>
    log.debug({ event: 'client_error', err: err.message }, 'client socket error'),
  );

  const earlyUpstream =
    options.earlyUpstream === false
      ? undefined
      : EarlyUpstream.start({ ...options, protocol: options.server.protocol, log });
  const context: SessionContext = {
    id,
    server: options.server,
    client: socket,
    remoteAddress: connection.remoteAddress,
    log,
    auth: options.auth,
    limits: options.limits,
    upstream: options.upstream,
    upstreamTls: options.upstreamTls,
    localTls: options.localTls?.implicit === false ? options.localTls.context : undefined,
    hostname: options.hostname,
    plaintextLoginsFromNetwork: options.plaintextLoginsFromNetwork === true,
    ...(earlyUpstream !== undefined && { earlyUpstream }),
  };
  const started = Date.now();
  let outcome;
  try {
    outcome = await options.session(context);
  } finally {
    earlyUpstream?.close();
    release();
  }
  if (outcome.kind === 'closed') {
    log.debug({ event: 'disconnect', durationMs: Date.now() - started }, 'closed before login');
    return;
  }
  connection.phase = 'spliced';
  connection.upstream = outcome.upstream;
  outcome.upstream.on('error', (err) =>
    log.debug({ event: 'upstream_error', err: err.message }, 'upstream socket error'),
  );
  await splice(outcome.client, outcome.upstream, outcome.clientPending, outcome.upstreamPending);
  log.info(
    {
      event: 'disconnect',
      ...(outcome.kind === 'authenticated'
        ? { account: outcome.account }
        : { authenticated: false }),
      durationMs: Date.now() - started,
      bytesFromClient: outcome.client.bytesRead,
      bytesToClient: outcome.client.bytesWritten,
    },
    'session ended',
  );
}

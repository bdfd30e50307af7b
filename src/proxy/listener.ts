import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/types.js';
import type { ServerConfig } from '../config/types.js';
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
  readonly localTls?: { readonly context: tls.SecureContext; readonly implicit: boolean };
  readonly hostname: string;
}

/** A bound local port and the connections it is serving. */
export interface Listener {
  readonly server: ServerConfig;
  readonly address: net.AddressInfo;
  /** Connections currently open, pre-auth or spliced. */
  readonly connections: ReadonlySet<net.Socket>;
  /** Stops accepting; open connections are left alone. */
  close(): Promise<void>;
}

/**
 * A burst of mail clients (fetchmail from cron, a client opening many folders) must never find the
 * listen queue full; the kernel caps this at net.core.somaxconn anyway.
 */
const LISTEN_BACKLOG = 1024;

/** Binds one `[PROTOCOL-port]` section and runs every accepted connection through its session. */
export function startListener(options: ListenerOptions): Promise<Listener> {
  const { server, log } = options;
  const connections = new Set<net.Socket>();

  const onSocket = (socket: net.Socket): void => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    tune(socket);
    void serve(socket, options).catch((err: unknown) => {
      log.error({ event: 'session_error', err }, 'connection failed unexpectedly');
      socket.destroy();
    });
  };

  const netServer =
    options.localTls?.implicit === true
      ? tls.createServer({ secureContext: options.localTls.context }, onSocket)
      : net.createServer(onSocket);
  netServer.on('tlsClientError', (err: Error) => log.info({ event: 'local_tls_failed', err: err.message }, 'client TLS handshake failed'));

  return new Promise((resolve, reject) => {
    netServer.once('error', reject);
    netServer.listen({ host: server.localAddress, port: server.localPort, backlog: LISTEN_BACKLOG }, () => {
      netServer.off('error', reject);
      netServer.on('error', (err) => log.error({ event: 'listener_error', err }, 'listener error'));
      resolve({
        server,
        address: netServer.address() as net.AddressInfo,
        connections,
        close: () => new Promise((done) => netServer.close(() => done())),
      });
    });
  });
}

async function serve(socket: net.Socket, options: ListenerOptions): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const log = options.log.child({ conn: id, protocol: options.server.protocol, port: options.server.localPort });
  log.debug({ event: 'connect', remote: socket.remoteAddress }, 'client connected');
  socket.on('error', (err) => log.debug({ event: 'client_error', err: err.message }, 'client socket error'));

  const context: SessionContext = {
    id,
    server: options.server,
    client: socket,
    log,
    auth: options.auth,
    limits: options.limits,
    upstream: options.upstream,
    upstreamTls: options.upstreamTls,
    localTls: options.localTls?.implicit === false ? options.localTls.context : undefined,
    hostname: options.hostname,
  };
  const started = Date.now();
  const outcome = await options.session(context);
  if (outcome.kind === 'closed') {
    log.debug({ event: 'disconnect', durationMs: Date.now() - started }, 'closed before login');
    return;
  }
  outcome.upstream.on('error', (err) => log.debug({ event: 'upstream_error', err: err.message }, 'upstream socket error'));
  await splice(outcome.client, outcome.upstream, outcome.clientPending, outcome.upstreamPending);
  log.info(
    {
      event: 'disconnect',
      ...(outcome.kind === 'authenticated' ? { account: outcome.account } : { authenticated: false }),
      durationMs: Date.now() - started,
      bytesFromClient: outcome.client.bytesRead,
      bytesToClient: outcome.client.bytesWritten,
    },
    'session ended',
  );
}

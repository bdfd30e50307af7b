import net from 'node:net';
import tls from 'node:tls';

/** How the proxy reaches one upstream server. */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  /**
   * `implicit`: TLS from the first byte (IMAPS 993, POP3S 995, SMTPS 465).
   * `starttls`: a plain connection the protocol session upgrades with `upgradeToTls`.
   */
  readonly security: 'implicit' | 'starttls';
}

export interface UpstreamTlsOptions {
  /** Extra trusted CAs (PEM), added to the system's roots; `NODE_EXTRA_CA_CERTS` works too. */
  readonly extraCa?: readonly string[];
  readonly connectTimeoutMs: number;
}

export type UpstreamFailureKind = 'unreachable' | 'timeout' | 'tls' | 'closed';

/** The upstream server could not be reached or did not behave; the message names the server. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailureKind,
    readonly target: string,
    detail: string,
  ) {
    super(`${target}: ${detail}`);
    this.name = 'UpstreamError';
  }
}

/**
 * TLS sessions to resume, per server: a resumed handshake saves a round trip and the key exchange
 * on every login after the first.
 */
const tlsSessions = new Map<string, Buffer>();

/**
 * One TLS context per upstream configuration, made on first use and shared by its connections.
 * Making one parses every trusted CA (the system's roots plus `server_ca_file`): about 20 ms of
 * event-loop time and 0.8 MB, which a context per connection paid on every login and kept for the
 * whole session (2,000 idle sessions held 2.2 GB; see docs/performance.md).
 */
const secureContexts = new WeakMap<UpstreamTlsOptions, tls.SecureContext>();

function secureContextFor(options: UpstreamTlsOptions): tls.SecureContext {
  let context = secureContexts.get(options);
  if (context === undefined) {
    context = tls.createSecureContext({
      ca:
        options.extraCa && options.extraCa.length > 0
          ? [...tls.rootCertificates, ...options.extraCa]
          : undefined,
      minVersion: 'TLSv1.2',
    });
    secureContexts.set(options, context);
  }
  return context;
}

/** `host:port`, the way every message names a server. */
export function describeTarget(target: { readonly host: string; readonly port: number }): string {
  return `${target.host}:${target.port}`;
}

/** Opens the connection to the upstream, verified TLS for `implicit`, plain TCP for `starttls`. */
export function connectUpstream(
  target: UpstreamTarget,
  options: UpstreamTlsOptions,
): Promise<net.Socket> {
  if (target.security === 'implicit') {
    return handshake(target, options, (tlsOptions) =>
      tls.connect({ ...tlsOptions, host: target.host, port: target.port }),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const disarm = armTimeout(socket, target, options.connectTimeoutMs, reject);
    socket.once('connect', () => {
      disarm();
      tune(socket);
      resolve(socket);
    });
    socket.once('error', (err) => reject(toUpstreamError(err, target)));
  });
}

/** Upgrades an established plain connection after the protocol's STARTTLS / STLS exchange. */
export function upgradeToTls(
  socket: net.Socket,
  target: UpstreamTarget,
  options: UpstreamTlsOptions,
): Promise<tls.TLSSocket> {
  return handshake(target, options, (tlsOptions) => tls.connect({ ...tlsOptions, socket }));
}

function handshake(
  target: UpstreamTarget,
  options: UpstreamTlsOptions,
  open: (tlsOptions: tls.ConnectionOptions) => tls.TLSSocket,
): Promise<tls.TLSSocket> {
  const key = describeTarget(target);
  return new Promise((resolve, reject) => {
    const socket = open({
      servername: net.isIP(target.host) ? undefined : target.host,
      secureContext: secureContextFor(options),
      rejectUnauthorized: true,
      session: tlsSessions.get(key),
    });
    const disarm = armTimeout(socket, target, options.connectTimeoutMs, reject);
    socket.on('session', (session: Buffer) => tlsSessions.set(key, session));
    socket.once('secureConnect', () => {
      disarm();
      tune(socket);
      resolve(socket);
    });
    socket.once('error', (err) => {
      tlsSessions.delete(key);
      reject(toUpstreamError(err, target));
    });
  });
}

/** Bounds the connection set-up; returns what ends the bound once the connection is up. */
function armTimeout(
  socket: net.Socket,
  target: UpstreamTarget,
  ms: number,
  reject: (err: Error) => void,
): () => void {
  const onTimeout = (): void => {
    reject(
      new UpstreamError(
        'timeout',
        describeTarget(target),
        `no answer within ${Math.round(ms / 1000)} s`,
      ),
    );
    socket.destroy();
  };
  socket.setTimeout(ms, onTimeout);
  // With the listener too: left behind, it would destroy the socket on the first timeout that
  // someone arms later for another purpose.
  return () => socket.setTimeout(0, onTimeout);
}

/**
 * Commands and replies are small and latency-bound (NOOP, IDLE wake-ups); bulk transfers fill
 * segments anyway. So Nagle is off, and keep-alive notices dead peers on long IDLE sessions.
 */
export function tune(socket: net.Socket): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ERR_TLS|ERR_SSL|SSL/;
/** OpenSSL's words for bytes that are not a TLS record at all: nothing to do with certificates. */
const NOT_TLS_CODES =
  /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|HTTP_REQUEST|RECORD_LENGTH_MISMATCH|UNEXPECTED_RECORD|BAD_RECORD_TYPE/;

function toUpstreamError(
  err: NodeJS.ErrnoException,
  target: { host: string; port: number },
): UpstreamError {
  const where = describeTarget(target);
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return new UpstreamError('unreachable', where, 'connection refused');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new UpstreamError('unreachable', where, 'host name not found');
  if (code === 'ETIMEDOUT') return new UpstreamError('timeout', where, 'connection timed out');
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return new UpstreamError('closed', where, 'connection closed by the server');
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new UpstreamError(
      'tls',
      where,
      `its TLS certificate is for another host name (${code}); check server_address`,
    );
  }
  if (NOT_TLS_CODES.test(code)) {
    return new UpstreamError(
      'tls',
      where,
      `the server's answer was not TLS (${code}): plain text came where the TLS handshake should be, ` +
        'from a STARTTLS injection on the path or a server that does not speak TLS on this port',
    );
  }
  if (TLS_CODES.test(code) || err.message.includes('certificate')) {
    return new UpstreamError(
      'tls',
      where,
      `TLS certificate not trusted (${code || err.message}); if the server uses a private CA, name its certificate in server_ca_file`,
    );
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
    return new UpstreamError('unreachable', where, 'network unreachable');
  return new UpstreamError('unreachable', where, err.message);
}

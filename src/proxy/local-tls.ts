import tls from 'node:tls';
import type net from 'node:net';
import type { Logger } from 'pino';

/**
 * Upgrades a client connection after a local STARTTLS / STLS exchange, with the section's
 * certificate. A failed handshake (wrong CA on the client, a client that leaves or sends
 * plain text) is logged as `local_tls_failed` and ends the connection: resolves `undefined`.
 */
export function startLocalTls(
  socket: net.Socket,
  secureContext: tls.SecureContext,
  log: Logger,
): Promise<tls.TLSSocket | undefined> {
  return new Promise((resolve) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    let settled = false;
    const failed = (reason: string): void => {
      if (settled) return;
      settled = true;
      log.info({ event: 'local_tls_failed', err: reason }, 'client TLS handshake failed');
      secure.destroy();
      socket.destroy();
      resolve(undefined);
    };
    const onError = (err: Error): void => failed(err.message);
    const onClose = (): void => failed('the client closed the connection during the handshake');
    secure.once('error', onError);
    secure.once('close', onClose);
    secure.once('secure', () => {
      settled = true;
      secure.off('error', onError);
      secure.off('close', onClose);
      // The listener logs errors of the plain socket; this one needs its own, or a reset after the
      // handshake would be an uncaught error.
      secure.on('error', (err) =>
        log.debug({ event: 'client_error', err: err.message }, 'client socket error'),
      );
      resolve(secure);
    });
  });
}

import tls from 'node:tls';
import type net from 'node:net';

/**
 * Upgrades a client connection after a local STARTTLS / STLS exchange, with the section's
 * certificate. Shared by the protocol sessions that offer it.
 */
export function startLocalTls(socket: net.Socket, secureContext: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    secure.once('secure', () => resolve(secure));
    secure.once('error', reject);
  });
}

import net from 'node:net';
import type { ControlReply, ControlRequest } from './protocol.js';
import { ownControlSocket, UntrustedControlSocketError } from './socket-trust.js';

/** No daemon is listening on the control socket (not running, or another socket path). */
export class DaemonNotRunningError extends Error {
  constructor(readonly path: string) {
    super(`no oauth2-mail-proxy is running with control socket ${path}`);
    this.name = 'DaemonNotRunningError';
  }
}

/**
 * Sends one request to the running daemon and returns its final reply. Nothing is sent to a
 * socket that is not ours (or root's): {@link UntrustedControlSocketError}.
 */
export async function controlRequest(
  path: string,
  request: ControlRequest,
  timeoutMs = 30_000,
): Promise<ControlReply> {
  if (!(await ownControlSocket(path))) throw new DaemonNotRunningError(path);
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let received = '';
    const timer =
      timeoutMs > 0
        ? setTimeout(() => socket.destroy(new Error('the proxy did not answer in time')), timeoutMs)
        : undefined;
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new DaemonNotRunningError(path)
          : err.code === 'EACCES'
            ? new UntrustedControlSocketError(path, 'permission denied on the control socket')
            : err,
      );
    });
    socket.once('close', () => {
      clearTimeout(timer);
      const last = received.trim().split('\n').at(-1);
      if (!last)
        return reject(new Error('the proxy closed the control connection without answering'));
      try {
        resolve(JSON.parse(last) as ControlReply);
      } catch {
        reject(new Error('the proxy sent an unreadable answer'));
      }
    });
  });
}

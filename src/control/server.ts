import { chmod, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import { LineReader, LineTooLongError } from '../proxy/line-reader.js';
import { MAX_REQUEST_BYTES, type ControlReply, type ControlRequest } from './protocol.js';
import { ownControlSocket } from './socket-trust.js';

/** What the daemon does for each request. */
export type ControlHandler = (request: ControlRequest) => Promise<ControlReply>;

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Another process already serves this control socket. */
export class ControlSocketInUseError extends Error {
  constructor(readonly path: string) {
    super(
      `another oauth2-mail-proxy is already running with control socket ${path} ` +
        '(several instances on one machine each need their own --control-socket)',
    );
    this.name = 'ControlSocketInUseError';
  }
}

/**
 * Serves the control socket: owner-only (created under umask 077, then chmod 0600), one request
 * per connection. A stale socket of ours (a crashed daemon) is replaced; a live one of ours is
 * `ControlSocketInUseError`; anything else at the path (another user's socket, a file) is
 * `UntrustedControlSocketError`.
 */
export async function startControlServer(
  path: string,
  handle: ControlHandler,
  log: Logger,
): Promise<ControlServer> {
  await removeStaleSocket(path, log);
  const server = net.createServer((socket) => void serve(socket, handle, log));
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
  await chmod(path, 0o600);
  return {
    path,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
      }),
  };
}

async function serve(socket: net.Socket, handle: ControlHandler, log: Logger): Promise<void> {
  socket.on('error', () => undefined);
  const reader = new LineReader(socket, MAX_REQUEST_BYTES);
  let reply: ControlReply;
  try {
    const line = await reader.readLine();
    if (line === null) return;
    const request = parseRequest(line);
    log.debug({ event: 'control_request', op: request.op }, 'control request');
    reply = await handle(request);
  } catch (err) {
    // A handler's own errors are worded for the user; a TypeError is a request of the wrong shape.
    const message =
      err instanceof LineTooLongError
        ? 'request too long'
        : err instanceof SyntaxError
          ? 'request is not JSON'
          : err instanceof MalformedRequestError || err instanceof TypeError
            ? 'malformed request: expected {"op": ..., "account": "..."} with text values'
            : (err as Error).message;
    reply = { done: true, ok: false, kind: 'protocol', message };
  }
  reader.release();
  socket.end(`${JSON.stringify(reply)}\n`);
}

class MalformedRequestError extends Error {}

/** The request line as an object whose every value is text, or MalformedRequestError. */
function parseRequest(line: string): ControlRequest {
  const request: unknown = JSON.parse(line);
  if (
    typeof request !== 'object' ||
    request === null ||
    Array.isArray(request) ||
    !Object.values(request).every((value) => typeof value === 'string')
  )
    throw new MalformedRequestError();
  return request as ControlRequest;
}

async function removeStaleSocket(path: string, log: Logger): Promise<void> {
  if (!(await ownControlSocket(path))) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new ControlSocketInUseError(path);
  log.info({ event: 'stale_control_socket' }, `replacing a stale control socket at ${path}`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

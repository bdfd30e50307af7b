/**
 * A TCP relay that adds a fixed one-way delay in each direction: a wide-area round trip between
 * the proxy (or a direct client) and a server on this machine, without touching the loopback
 * interface that everything else on the machine shares (`tc netem` on `lo` would delay them too).
 *
 * The connection itself is delayed like TCP's: nothing the client sends reaches the server before
 * one round trip (SYN, SYN-ACK) plus the one-way delay; every byte then arrives `delayMs` after it
 * was sent, in order. (The relay's own connection to the server opens at once, so a server that
 * speaks first would greet a round trip early: meant for TLS servers, which wait for the client.)
 */
import net from 'node:net';

export interface DelayRelay {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a relay on 127.0.0.1 to `127.0.0.1:targetPort` with `delayMs` each way. */
export function startDelayRelay(targetPort: number, delayMs: number): Promise<DelayRelay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const opened = performance.now();
    // Connected at once: a TLS server says nothing before the client's hello, which is delayed.
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    client.once('close', () => upstream.destroy());
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      socket.once('close', () => sockets.delete(socket));
    }
    // The client's bytes wait out the handshake round trip the relay's accept skipped.
    delayed(client, upstream, delayMs, opened + 2 * delayMs);
    delayed(upstream, client, delayMs, opened);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close() {
          for (const socket of sockets) socket.destroy();
          return new Promise((done) => server.close(() => done()));
        },
      }),
    ),
  );
}

/** Forwards `from` to `to`, each chunk `delayMs` after it arrived (never before `notBefore`). */
function delayed(from: net.Socket, to: net.Socket, delayMs: number, notBefore: number): void {
  const queue: { readonly at: number; readonly chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const pump = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
      const { chunk } = queue.shift()!;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - now);
  };
  const push = (chunk: Buffer | null): void => {
    queue.push({ at: Math.max(performance.now(), notBefore) + delayMs, chunk });
    if (timer === undefined) timer = setTimeout(pump, queue[0]!.at - performance.now());
  };
  from.on('data', push);
  from.once('end', () => push(null));
}

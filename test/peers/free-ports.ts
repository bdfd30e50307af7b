/**
 * Free TCP ports on 127.0.0.1 for peers that cannot bind port 0 and report it (Dovecot). Another
 * process may take a port between this check and the peer's bind, so callers retry on a bind error.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';

function listenOnAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** Returns `count` distinct ports that were free a moment ago. */
/**
 * Ports already handed out in this process. A port is free again as soon as its probe socket
 * closes, so a second call could return a port the first caller has not bound yet (two sections
 * on one port); none is handed out twice.
 */
const handedOut = new Set<number>();

export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    // Hold every socket open until all are chosen so the kernel hands out distinct ports.
    const servers = await Promise.all(Array.from({ length: count - ports.length }, listenOnAnyPort));
    for (const server of servers) {
      const { port } = server.address() as AddressInfo;
      if (!handedOut.has(port)) {
        handedOut.add(port);
        ports.push(port);
      }
    }
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
  return ports;
}

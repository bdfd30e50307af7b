/**
 * Free TCP ports on 127.0.0.1 for peers that cannot bind port 0 and report it (Dovecot) and for
 * the proxy's listeners, whose ports are written into its config before it starts.
 *
 * A port found by binding port 0 comes from the kernel's ephemeral range, and between the probe
 * and the real bind the kernel may hand the same port to another test process (for its own
 * port-0 listener or an outgoing connection): a test then fails with "port already in use". So
 * ports come from below the ephemeral range (which starts at 32768 on Linux), where the kernel
 * never picks on its own, and each vitest worker (VITEST_POOL_ID) has a block of its own.
 * TEST_PORT_BLOCK shifts the blocks, so two suites can run side by side on one machine.
 */
import { createServer } from 'node:net';

const FIRST_PORT = 10_000;
const PORTS_PER_WORKER = 1_000;
/** Blocks below 32768: 10000-10999, ..., 31000-31999. */
const WORKER_BLOCKS = 22;

const worker =
  (Number(process.env.TEST_PORT_BLOCK ?? 0) + Number(process.env.VITEST_POOL_ID ?? 0)) %
  WORKER_BLOCKS;
const blockStart = FIRST_PORT + worker * PORTS_PER_WORKER;
let nextOffset = 0;

/** Whether `port` can be bound on 127.0.0.1 right now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Returns `count` distinct ports that were free a moment ago and that this process has not
 * handed out before (a port is free again as soon as its probe closes, so a second call could
 * otherwise return a port the first caller has not bound yet).
 */
export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tried = 0; ports.length < count; tried += 1) {
    if (tried >= PORTS_PER_WORKER)
      throw new Error(`no free port left in ${blockStart}-${blockStart + PORTS_PER_WORKER - 1}`);
    const port = blockStart + (nextOffset % PORTS_PER_WORKER);
    nextOffset += 1;
    if (await isFree(port)) ports.push(port);
  }
  return ports;
}

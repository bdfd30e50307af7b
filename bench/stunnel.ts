/**
 * stunnel (C, OpenSSL) in client mode in front of each server: a plain-to-TLS relay that does
 * nothing but the TLS a proxy must do, so the proxy's cost can be read against the least any
 * TLS-unwrapping hop costs (the floor), beside its cost against a direct TLS client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { freePorts } from '../test/peers/free-ports.js';

/** A TLS server stunnel connects to; `smtp`: STARTTLS on a plain connection, done by stunnel. */
export interface StunnelService {
  readonly name: string;
  readonly port: number;
  readonly caFile: string;
  readonly starttls?: 'smtp';
}

export interface Stunnel {
  /** The local plain-text port in front of each service, by name. */
  readonly ports: Readonly<Record<string, number>>;
  readonly pid: number;
  stop(): Promise<void>;
}

/** How long stunnel may take to open its ports. */
const START_MS = 10_000;

/** Starts one stunnel process (foreground) serving every service; resolves once all ports accept. */
export async function startStunnel(
  dir: string,
  services: readonly StunnelService[],
): Promise<Stunnel> {
  const local = await freePorts(services.length);
  const ports: Record<string, number> = {};
  const sections = services.map((service, i) => {
    ports[service.name] = local[i]!;
    return [
      `[${service.name}]`,
      'client = yes',
      `accept = 127.0.0.1:${local[i]}`,
      `connect = 127.0.0.1:${service.port}`,
      ...(service.starttls ? [`protocol = ${service.starttls}`] : []),
      // Verified as the proxy verifies: the chain to the test CA and the server's address.
      'verifyChain = yes',
      `CAfile = ${service.caFile}`,
      'checkIP = 127.0.0.1',
      // As the proxy's sockets (Nagle off): small commands are latency-bound.
      'socket = l:TCP_NODELAY=1',
      'socket = r:TCP_NODELAY=1',
      '',
    ].join('\n');
  });
  const config = join(dir, 'stunnel.conf');
  await writeFile(config, ['foreground = yes', 'pid =', 'debug = 3', '', ...sections].join('\n'));
  const child: ChildProcess = spawn('stunnel4', [config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000)));
  const deadline = Date.now() + START_MS;
  for (const port of local) {
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`stunnel4 did not start (is Debian's stunnel4 installed?): ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    ports,
    pid: child.pid ?? 0,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

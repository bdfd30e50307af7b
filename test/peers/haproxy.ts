/**
 * A real HAProxy (Debian's) in TCP mode in front of several proxy instances, on loopback: one
 * frontend per protocol, round-robin over the instances, optional PROXY protocol headers and
 * health checks, as docs/scale-out.md configures it. The admin socket answers `show stat`, so a
 * test can wait until HAProxy has noticed that an instance went down or came back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './free-ports.js';

export interface HaproxyServer {
  /** The instance's listener port for this frontend's protocol, on 127.0.0.1. */
  readonly port: number;
  /** Where `check: 'healthz'` asks `GET /healthz` (the instance's metrics endpoint). */
  readonly healthzPort?: number | undefined;
}

export interface HaproxyFrontend {
  readonly name: string;
  readonly servers: readonly HaproxyServer[];
  /** PROXY protocol header sent to the instances (and with their health checks). */
  readonly sendProxy?: 'v1' | 'v2' | undefined;
  /**
   * `connect`: a TCP connect (with the PROXY header when one is sent); `healthz`: HTTP on each
   * server's `healthzPort`; `none`: HAProxy trusts every server. Checks run every 300 ms, a
   * server is out after 2 failures and back after 1 success.
   */
  readonly check?: 'connect' | 'healthz' | 'none' | undefined;
}

export type ServerStatus = 'UP' | 'DOWN' | 'MAINT' | 'no check' | string;

export interface Haproxy {
  /** The frontend's port on 127.0.0.1, by frontend name. */
  readonly ports: Readonly<Record<string, number>>;
  readonly config: string;
  /** Each server's status in a frontend's backend, in the order given. */
  status(frontend: string): Promise<ServerStatus[]>;
  /** Resolves when every server of `frontend` reports `want` (or throws after `timeoutMs`). */
  waitFor(frontend: string, want: ServerStatus[], timeoutMs?: number): Promise<void>;
  /** HAProxy's own output, for assertions and for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

function serverLine(frontend: HaproxyFrontend, server: HaproxyServer, index: number): string {
  const options = [`server ${frontend.name}${index + 1} 127.0.0.1:${server.port}`];
  if (frontend.sendProxy === 'v1') options.push('send-proxy');
  if (frontend.sendProxy === 'v2') options.push('send-proxy-v2');
  const check = frontend.check ?? 'connect';
  if (check === 'connect') {
    options.push('check');
    if (frontend.sendProxy !== undefined) options.push('check-send-proxy');
  }
  if (check === 'healthz') {
    if (server.healthzPort === undefined) throw new Error(`${frontend.name}: no healthzPort`);
    options.push(`check port ${server.healthzPort}`);
  }
  return `    ${options.join(' ')}`;
}

function configText(frontends: readonly HaproxyFrontend[], ports: number[], dir: string): string {
  const sections = frontends.map((frontend, i) => {
    const lines = [
      `frontend ${frontend.name}`,
      `    bind 127.0.0.1:${ports[i]}`,
      `    default_backend ${frontend.name}_instances`,
      '',
      `backend ${frontend.name}_instances`,
      '    balance roundrobin',
      '    default-server inter 300ms fall 2 rise 1',
    ];
    if (frontend.check === 'healthz') lines.push('    option httpchk GET /healthz');
    lines.push(...frontend.servers.map((server, j) => serverLine(frontend, server, j)));
    return lines.join('\n');
  });
  return [
    'global',
    '    maxconn 4096',
    `    stats socket ${join(dir, 'admin.sock')} mode 600 level admin`,
    '',
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 5m',
    '    timeout server 5m',
    '',
    ...sections,
    '',
  ].join('\n');
}

/** Sends one admin command and returns HAProxy's whole answer. */
function admin(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const connection = connect(socket, () => connection.end(`${command}\n`));
    connection.on('data', (chunk: Buffer) => chunks.push(chunk));
    connection.on('error', reject);
    connection.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export async function startHaproxy(frontends: readonly HaproxyFrontend[]): Promise<Haproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'o2mp-haproxy-'));
  const ports = await freePorts(frontends.length);
  const config = configText(frontends, ports, dir);
  const configFile = join(dir, 'haproxy.cfg');
  await writeFile(configFile, config);

  let text = '';
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const byName = Object.fromEntries(frontends.map((f, i) => [f.name, ports[i]!]));
  const started = Date.now();
  while (!(await listening(ports[0]!))) {
    if (child.exitCode !== null || Date.now() - started > 10_000) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`haproxy did not start:\n${text}\n${config}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  const status = async (frontend: string): Promise<ServerStatus[]> => {
    const csv = await admin(join(dir, 'admin.sock'), 'show stat');
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const columns = (header ?? '').split(',');
    const proxyColumn = columns.indexOf('pxname');
    const serverColumn = columns.indexOf('svname');
    const statusColumn = columns.indexOf('status');
    return rows
      .map((row) => row.split(','))
      .filter(
        (cells) =>
          cells[proxyColumn] === `${frontend}_instances` &&
          !['FRONTEND', 'BACKEND'].includes(cells[serverColumn] ?? ''),
      )
      .map((cells) => cells[statusColumn] ?? '');
  };

  return {
    ports: byName,
    config,
    status,
    waitFor: async (frontend, want, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      let seen: ServerStatus[] = [];
      while (Date.now() < deadline) {
        seen = await status(frontend);
        if (seen.length === want.length && seen.every((s, i) => s.startsWith(want[i]!))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${frontend}: servers ${seen.join(', ')}, wanted ${want.join(', ')}`);
    },
    output: () => text,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  LoginFailure,
  type Authenticator,
  type LoginFailureReason,
  type UpstreamCredentials,
} from '../../src/auth/types.js';
import type { Protocol, ServerConfig } from '../../src/config/types.js';
import { startListener, type Listener } from '../../src/proxy/listener.js';
import {
  DEFAULT_LIMITS,
  type PreAuthLimits,
  type ProtocolSession,
} from '../../src/proxy/session.js';
import { makeTestCa, type TestCa } from '../peers/certs.js';
import { Conversation } from './conversation.js';

/** A throwaway CA shared by a test file. */
export async function testCa(): Promise<
  TestCa & { dir: string; caPem: string; dispose(): Promise<void> }
> {
  const dir = await mkdtemp(join(tmpdir(), 'omp-ca-'));
  const ca = await makeTestCa(dir);
  return {
    ...ca,
    dir,
    caPem: await readFile(ca.caFile, 'utf8'),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * A server whose side of each conversation the test scripts line by line, standing in for the
 * upstream in state-machine tests (the end-to-end tests use Dovecot and smtp-server instead).
 */
export class ScriptedUpstream {
  private readonly queue: Conversation[] = [];
  private waiter: ((c: Conversation) => void) | undefined;
  connections = 0;
  /** TCP connections open right now, counted before any TLS handshake. */
  readonly rawSockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(ca: TestCa, security: 'implicit' | 'starttls'): Promise<ScriptedUpstream> {
    const [key, cert] = await Promise.all([readFile(ca.keyFile), readFile(ca.certFile)]);
    // Connections arrive only after listen(), by which time `upstream` exists.
    const onSocket = (socket: net.Socket): void => upstream.accept(new Conversation(socket));
    const server =
      security === 'implicit'
        ? tls.createServer({ key, cert }, onSocket)
        : net.createServer(onSocket);
    const upstream = new ScriptedUpstream(server);
    const raw = upstream.rawSockets;
    server.on('connection', (socket: net.Socket) => {
      raw.add(socket);
      socket.on('close', () => raw.delete(socket));
    });
    upstream.tls = { key, cert };
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return upstream;
  }

  tls: { key: Buffer; cert: Buffer } = { key: Buffer.alloc(0), cert: Buffer.alloc(0) };

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The next connection the proxy opens to us. */
  next(timeoutMs = 10_000): Promise<Conversation> {
    while (this.queue[0]?.socket.destroyed) this.queue.shift();
    const ready = this.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the proxy did not connect upstream')),
        timeoutMs,
      );
      this.waiter = (c) => {
        clearTimeout(timer);
        resolve(c);
      };
    });
  }

  /** Upgrades a scripted plain connection after a STARTTLS exchange (server side). */
  async startTls(conversation: Conversation): Promise<Conversation> {
    conversation.socket.removeAllListeners('data');
    const secure = new tls.TLSSocket(conversation.socket, {
      isServer: true,
      key: this.tls.key,
      cert: this.tls.cert,
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
    });
    return new Conversation(secure);
  }

  close(): Promise<void> {
    for (const c of this.open) c.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private readonly open = new Set<Conversation>();

  private accept(conversation: Conversation): void {
    this.connections += 1;
    this.open.add(conversation);
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(conversation);
    else this.queue.push(conversation);
  }
}

export interface TestAccount {
  readonly password: string;
  /** The access token handed out, or the failure to refuse with. */
  readonly result: string | { readonly reason: LoginFailureReason; readonly message: string };
}

/**
 * The authenticator seam with fixed answers, for state-machine tests that are about the
 * protocol, not about tokens (those have their own tests against the real identity provider).
 */
export class FixedAuthenticator implements Authenticator {
  readonly rejected: string[] = [];
  readonly logins: string[] = [];

  constructor(private readonly accounts: Record<string, TestAccount>) {}

  async login(request: { username: string; password: string }): Promise<UpstreamCredentials> {
    this.logins.push(request.username);
    const account = this.accounts[request.username];
    if (!account) throw new LoginFailure('unknown-account', `Unknown account ${request.username}`);
    if (account.password !== request.password)
      throw new LoginFailure('bad-password', `Wrong password for ${request.username}`);
    if (typeof account.result !== 'string')
      throw new LoginFailure(account.result.reason, account.result.message);
    return { account: request.username, user: request.username, accessToken: account.result };
  }

  rejectedUpstream(credentials: UpstreamCredentials): void {
    this.rejected.push(credentials.account);
  }
}

/** Every log line the proxy wrote during a test, for assertions (and secret scans). */
export class LogCapture {
  readonly lines: string[] = [];
  readonly logger = pino(
    { level: 'debug' },
    new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    }),
  );

  get text(): string {
    return this.lines.join('\n');
  }

  events(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface SessionUnderTest {
  readonly port: number;
  readonly logs: LogCapture;
  readonly listener: Listener;
  connect(): Promise<Conversation>;
  close(): Promise<void>;
}

/** Runs one protocol session behind a real local listener, with a scripted upstream. */
export async function startSessionUnderTest(options: {
  protocol: Protocol;
  session: ProtocolSession;
  auth: Authenticator;
  upstream: ScriptedUpstream;
  upstreamSecurity: 'implicit' | 'starttls';
  caPem: string;
  limits?: Partial<PreAuthLimits> | undefined;
  localTls?: { context: tls.SecureContext; implicit: boolean } | undefined;
}): Promise<SessionUnderTest> {
  const logs = new LogCapture();
  const server: ServerConfig = {
    section: `${options.protocol}-0`,
    protocol: options.protocol,
    localPort: 0,
    localAddress: '127.0.0.1',
    serverAddress: 'localhost',
    serverPort: options.upstream.port,
    serverStarttls: options.upstreamSecurity === 'starttls',
    localStarttls: options.localTls?.implicit === false,
  };
  const listener = await startListener({
    server,
    session: options.session,
    auth: options.auth,
    log: logs.logger,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    upstream: {
      host: 'localhost',
      port: options.upstream.port,
      security: options.upstreamSecurity,
    },
    upstreamTls: { extraCa: [options.caPem], connectTimeoutMs: 5_000 },
    localTls: options.localTls,
    hostname: 'proxy.test',
    // These tests script one upstream connection per login; test/e2e/early-upstream.test.ts
    // covers the connection opened as the client connects.
    earlyUpstream: false,
  });
  const open: Conversation[] = [];
  return {
    port: listener.address.port,
    logs,
    listener,
    async connect() {
      const c = await Conversation.connect(listener.address.port);
      open.push(c);
      return c;
    },
    async close() {
      for (const c of open) c.close();
      for (const socket of listener.connections) socket.destroy();
      await listener.close();
    },
  };
}

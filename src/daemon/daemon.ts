import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { OAuthAuthenticator } from '../auth/authenticator.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { controlHandler } from './control-handler.js';
import type { ProxyConfig, ServerConfig } from '../config/types.js';
import { startListener, type Listener } from '../proxy/listener.js';
import { sessionFor, upstreamTarget } from '../proxy/protocols.js';
import { DEFAULT_LIMITS } from '../proxy/session.js';
import { KeyCache } from '../tokens/key-cache.js';
import { TokenStore } from '../tokens/store.js';
import { AccountKeys } from '../tokens/token-cipher.js';
import { KeepAlive } from '../tokens/keep-alive.js';
import { TokenManager } from '../tokens/token-manager.js';
import { startNotifier } from './notifier.js';

export interface DaemonOptions {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly log: Logger;
  /** How long a login waits for a pending authorisation (0: answer "authorise first" at once). */
  readonly loginWaitMs: number;
  /** What a user must do to authorise an account, for replies and logs. */
  readonly howToAuthorise: (account: string) => string;
  /** Unix socket the CLI's `status` and `authorize` talk to. */
  readonly controlSocket: string;
  /** Run on token events (authorisation needed, refreshed, failed); see notifier.ts. */
  readonly notifyCommand?: string;
  /** Background refresh at least this often for accounts whose key is known. */
  readonly keepAliveIntervalMs?: number;
  readonly upstreamConnectTimeoutMs?: number;
  readonly identityProviderTimeoutMs?: number;
}

export interface Daemon {
  readonly config: ProxyConfig;
  readonly listeners: readonly Listener[];
  readonly tokens: TokenManager;
  /** Stops accepting, then closes what is still open after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Refresh this long before expiry, so a login never races the token's last seconds. */
const REFRESH_MARGIN_SECONDS = 300;
/** Microsoft drops refresh tokens unused for 90 days; a daily refresh keeps idle accounts alive. */
const DEFAULT_KEEPALIVE_INTERVAL_MS = 24 * 60 * 60 * 1000;

/**
 * Loads the configuration, binds every listener, and wires sessions to the token manager.
 * Nothing half-starts: an invalid config or a port that cannot be bound stops start-up with
 * every listener already bound closed again.
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { log } = options;
  const config = await loadConfig(options.configFile);

  const tokens = new TokenManager({
    store: new TokenStore(options.cacheStore),
    keys: new AccountKeys(new KeyCache()),
    log,
    oauth: { requestTimeoutMs: options.identityProviderTimeoutMs ?? 15_000 },
    refreshMarginSeconds: REFRESH_MARGIN_SECONDS,
    loginWaitMs: options.loginWaitMs,
    deleteTokensOnWrongPassword: config.options.deleteAccountTokenOnPasswordError,
    howToAuthorise: options.howToAuthorise,
  });
  tokens.pending.on('pending', (pending) =>
    log.warn(
      { event: 'authorisation_needed', account: pending.key, url: pending.url },
      `${pending.loginName} needs authorising: ${options.howToAuthorise(pending.key)}`,
    ),
  );
  const auth = new OAuthAuthenticator(() => config, tokens, log);
  const keepAlive = new KeepAlive(tokens, log, {
    marginSeconds: REFRESH_MARGIN_SECONDS,
    maxIntervalMs: options.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    retryMs: 60_000,
  });
  const stopNotifier = options.notifyCommand ? startNotifier(tokens, options.notifyCommand, log) : () => undefined;

  const listeners: Listener[] = [];
  let control: ControlServer;
  try {
    for (const server of config.servers) {
      listeners.push(
        await startListener({
          server,
          session: sessionFor(server.protocol),
          auth,
          log,
          limits: DEFAULT_LIMITS,
          upstream: upstreamTarget(server),
          upstreamTls: {
            connectTimeoutMs: options.upstreamConnectTimeoutMs ?? 15_000,
            ...(server.serverCaFile && { extraCa: [await readPem(config, server, 'server_ca_file', server.serverCaFile)] }),
          },
          ...(await localTls(config, server)),
          hostname: hostname(),
        }).catch((err: NodeJS.ErrnoException) => {
          throw new ListenError(server, err);
        }),
      );
      log.info({ event: 'listening', protocol: server.protocol, address: server.localAddress, port: server.localPort, upstream: `${server.serverAddress}:${server.serverPort}` }, `listening on ${server.localAddress}:${server.localPort}`);
    }
    control = await startControlServer(options.controlSocket, controlHandler(() => config, tokens), log);
  } catch (err) {
    keepAlive.close();
    stopNotifier();
    await Promise.all(listeners.map((listener) => listener.close()));
    throw err;
  }

  return {
    config,
    listeners,
    tokens,
    async stop(graceMs = 5_000) {
      keepAlive.close();
      stopNotifier();
      tokens.pending.close();
      await control.close();
      await Promise.race([
        Promise.all(listeners.map((listener) => listener.close())),
        new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
      for (const listener of listeners) for (const socket of listener.connections) socket.destroy();
    },
  };
}

/** A local port could not be bound (in use, not permitted, address not on this machine). */
export class ListenError extends Error {
  constructor(
    readonly server: ServerConfig,
    cause: NodeJS.ErrnoException,
  ) {
    const why =
      cause.code === 'EADDRINUSE'
        ? 'the port is already in use (is another proxy running?)'
        : cause.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : cause.code === 'EADDRNOTAVAIL'
            ? 'the address is not one of this machine'
            : cause.message;
    super(`[${server.section}]: cannot listen on ${server.localAddress}:${server.localPort}: ${why}`);
    this.name = 'ListenError';
  }
}

async function localTls(config: ProxyConfig, server: ServerConfig): Promise<{ localTls?: { context: tls.SecureContext; implicit: boolean } }> {
  if (!server.localCertificatePath || !server.localKeyPath) return {};
  const [cert, key] = await Promise.all([
    readPem(config, server, 'local_certificate_path', server.localCertificatePath),
    readPem(config, server, 'local_key_path', server.localKeyPath),
  ]);
  try {
    return { localTls: { context: tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' }), implicit: !server.localStarttls } };
  } catch (err) {
    throw new ConfigError({ file: config.file, section: server.section, key: 'local_certificate_path', problem: `certificate and key do not work together: ${(err as Error).message}` });
  }
}

async function readPem(config: ProxyConfig, server: ServerConfig, key: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError({ file: config.file, section: server.section, key, problem: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  }
}

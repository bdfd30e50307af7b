import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { OAuthAuthenticator } from '../auth/authenticator.js';
import type { LoginRequest, UpstreamCredentials } from '../auth/types.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { controlHandler } from './control-handler.js';
import type { ProxyConfig, ServerConfig } from '../config/types.js';
import { PreAuthGate } from '../proxy/admission.js';
import type { Listener, ListenerOptions } from '../proxy/listener.js';
import { sessionFor, upstreamTarget } from '../proxy/protocols.js';
import { DEFAULT_LIMITS, type PreAuthLimits } from '../proxy/session.js';
import { FileTokenStore } from '../tokens/stores/file-store.js';
import type { TokenStore } from '../tokens/stores/token-store.js';
import { Vault } from '../tokens/vault/vault.js';
import { KeepAlive } from '../tokens/keep-alive.js';
import { subjectFor } from '../tokens/subject.js';
import { TokenManager } from '../tokens/token-manager.js';
import { InFlight } from './in-flight.js';
import { ListenerSet, type PortChanges } from './listener-set.js';
import { startNotifier } from './notifier.js';
import { startRedirectServers } from './redirect-server.js';
import { startupWarnings } from './startup-warnings.js';
import { accessSecretFile, webUrlFile } from '../web/access-secret.js';
import { daemonPort } from '../web/daemon-port.js';
import { checkWebAddress, startWebServer, type WebServer } from '../web/server.js';
import { webPageUrl, type WebAddress } from '../web/web-address.js';
import { Metrics } from '../metrics/metrics.js';
import { startMetricsServer, type MetricsServer } from '../metrics/http-server.js';
import { isPostgresUrl, redactUrl, type StoreHealth } from '../tokens/stores/postgres-store.js';
import type { AccountStatus } from '../control/protocol.js';
import { LoginFailure } from '../auth/types.js';

export { ListenError } from './listener-set.js';

export interface DaemonOptions {
  readonly configFile: string;
  readonly cacheStore: string;
  /** The store `cacheStore` names, opened by the caller (who closes it); default the INI file. */
  readonly store?: TokenStore;
  readonly log: Logger;
  /** How long a login waits for a pending authorisation (0: answer "authorise first" at once). */
  readonly loginWaitMs: number;
  /** What a user must do to authorise an account, for replies and logs. */
  readonly howToAuthorize: (account: string) => string;
  /** Unix socket the CLI's `status` and `authorize` talk to. */
  readonly controlSocket: string;
  /** Run on token events (authorisation needed, refreshed, failed); see notifier.ts. */
  readonly notifyCommand?: string;
  /** Receive sign-in redirects on a local HTTP port instead of asking for a paste (`--local-server-auth`). */
  readonly localServerAuth?: boolean;
  /** Background refresh at least this often for accounts whose key is known. */
  readonly keepAliveIntervalMs?: number;
  readonly upstreamConnectTimeoutMs?: number;
  readonly identityProviderTimeoutMs?: number;
  /** Bounds on clients before they log in; default {@link DEFAULT_LIMITS}. */
  readonly limits?: PreAuthLimits;
  /** Serve the authorisation page here (`--web-address`); off when absent. */
  readonly web?: WebAddress;
  /** Serve `/metrics` and `/healthz` here (`--metrics-address`); else the config's `metrics_address`. */
  readonly metricsAddress?: { readonly host: string; readonly port: number } | undefined;
  /** The token store's health, for `/metrics` and `/healthz`; a file store is always up. */
  readonly storeHealth?: (() => StoreHealth) | undefined;
}

/** What a reload changed, by section and account name. */
export interface ReloadSummary extends PortChanges {
  readonly accountsAdded: readonly string[];
  readonly accountsRemoved: readonly string[];
  readonly accountsChanged: readonly string[];
}

/** How a stop went. */
export interface StopSummary {
  /** Sessions still open when the grace time ran out, and cut. */
  readonly cut: number;
  /** Milliseconds from the stop to the last token write. */
  readonly durationMs: number;
}

export interface Daemon {
  /** The configuration in force (replaced by a successful {@link Daemon.reload}). */
  readonly config: ProxyConfig;
  /** The listeners accepting connections. */
  readonly listeners: readonly Listener[];
  readonly tokens: TokenManager;
  /** The authorisation page's address (without its access key), when it is on. */
  readonly webUrl?: string;
  /** One line for `systemctl status`: what is listening where, and the control socket. */
  describe(): string;
  /**
   * Re-reads the config file and applies it: ports of new sections are bound, ports of removed
   * ones closed, changed sections updated in place; accounts apply to the next login. Established
   * sessions are never touched. Nothing changes when it fails.
   *
   * @throws ConfigError (invalid file, unreadable certificate) or ListenError (a new port cannot be bound)
   */
  reload(): Promise<ReloadSummary>;
  /**
   * Stops accepting, sends every client that has not logged in the protocol's goodbye, lets spliced
   * sessions finish for up to `graceMs` (less if `hurry` aborts), cuts the rest, then waits for
   * logins under way and token writes to finish.
   */
  stop(graceMs?: number, hurry?: AbortSignal): Promise<StopSummary>;
}

/** Refresh this long before expiry, so a login never races the token's last seconds. */
const REFRESH_MARGIN_SECONDS = 300;
/** Microsoft drops refresh tokens unused for 90 days; a daily refresh keeps idle accounts alive. */
const DEFAULT_KEEPALIVE_INTERVAL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** After the grace time, how long logins under way may still take to store their tokens. */
const TOKEN_WRITE_GRACE_MS = 5_000;

/**
 * Loads the configuration, binds every listener, and wires sessions to the token manager.
 * Nothing half-starts: an invalid config or a port that cannot be bound stops start-up with
 * every listener already bound closed again. Resolves once every listener and the control socket
 * are up, so the caller can report readiness.
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { log } = options;
  if (options.web) checkWebAddress(options.web);
  let config = await loadConfig(options.configFile);
  const limits = options.limits ?? DEFAULT_LIMITS;
  const identityProviderTimeoutMs = options.identityProviderTimeoutMs ?? 15_000;
  for (const warning of await startupWarnings(config, options.cacheStore))
    log.warn({ event: 'startup_warning' }, warning);

  const store = options.store ?? new FileTokenStore(options.cacheStore);
  const tokens = new TokenManager({
    store,
    vault: new Vault(),
    log,
    oauth: { requestTimeoutMs: identityProviderTimeoutMs },
    refreshMarginSeconds: REFRESH_MARGIN_SECONDS,
    loginWaitMs: options.loginWaitMs,
    // Both read at each use, so a reload applies them.
    get deleteTokensOnWrongPassword() {
      return config.options.deleteAccountTokenOnPasswordError;
    },
    loginPasswordIsAppSecret: () => config.options.useLoginPasswordAsClientCredentialsSecret,
    howToAuthorize: options.howToAuthorize,
  });
  tokens.pending.on('pending', (pending) =>
    log.warn(
      { event: 'authorisation_needed', account: pending.key, url: pending.url },
      `${pending.loginName} needs authorising: ${options.howToAuthorize(pending.key)}`,
    ),
  );
  const logins = new InFlight();
  const storeHealth = options.storeHealth ?? ((): StoreHealth => ({ up: true }));
  const storeLocation = isPostgresUrl(options.cacheStore)
    ? redactUrl(options.cacheStore)
    : options.cacheStore;
  const handle = controlHandler(
    () => config,
    tokens,
    () => ({
      location: storeLocation,
      ...storeHealth(),
    }),
  );
  const metricsAddress = options.metricsAddress ?? config.options.metricsAddress;
  const metrics =
    metricsAddress &&
    new Metrics({
      accounts: async () => {
        const reply = await handle({ op: 'status' });
        return 'accounts' in reply ? reply.accounts : ([] as AccountStatus[]);
      },
      storeHealth,
    });
  if (metrics) tokens.on('event', (event) => metrics.tokenEvent(event));
  const auth = new TrackedAuthenticator(logins, metrics, () => config, tokens, log);
  const keepAlive = new KeepAlive(tokens, log, {
    marginSeconds: REFRESH_MARGIN_SECONDS,
    maxIntervalMs: options.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    retryMs: 60_000,
  });
  const stopNotifier = options.notifyCommand
    ? startNotifier(tokens, options.notifyCommand, log, options.web && webPageUrl(options.web))
    : () => undefined;
  const stopRedirectServers = options.localServerAuth
    ? startRedirectServers(tokens, log)
    : () => undefined;
  const gate = new PreAuthGate(limits);
  const machineName = hostname();

  const optionsFor = async (
    forConfig: ProxyConfig,
    server: ServerConfig,
  ): Promise<ListenerOptions> => ({
    server,
    session: sessionFor(server.protocol),
    auth,
    log,
    limits,
    gate,
    upstream: upstreamTarget(server),
    upstreamTls: {
      connectTimeoutMs: options.upstreamConnectTimeoutMs ?? 15_000,
      ...(server.serverCaFile && {
        extraCa: [await readPem(forConfig, server, 'server_ca_file', server.serverCaFile)],
      }),
    },
    ...(await localTls(forConfig, server)),
    hostname: machineName,
    plaintextLoginsFromNetwork: forConfig.options.allowPlaintextNetworkLogins,
    onConnection: metrics && ((socket, protocol) => metrics.connection(socket, protocol)),
  });

  const ports = new ListenerSet(log);
  const prepare = async (forConfig: ProxyConfig): Promise<Map<ServerConfig, ListenerOptions>> => {
    const prepared = new Map<ServerConfig, ListenerOptions>();
    for (const server of forConfig.servers)
      prepared.set(server, await optionsFor(forConfig, server));
    return prepared;
  };

  let control: ControlServer;
  let web: WebServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let stopping = false;
  try {
    await ports.bindAll([...(await prepare(config)).values()]);
    // The first start of a user's daemon finds no state directory yet (systemd's StateDirectory=
    // makes it for the system unit); owner-only, like the token store's.
    await mkdir(dirname(options.controlSocket), { recursive: true, mode: 0o700 });
    control = await startControlServer(options.controlSocket, handle, log);
    if (options.web)
      web = await startWebServer({
        address: options.web,
        port: daemonPort(handle, tokens),
        secretFile: accessSecretFile(options.cacheStore),
        urlFile: webUrlFile(options.cacheStore),
        log,
      }).catch(async (err: unknown) => {
        await control.close();
        throw err;
      });
    if (metrics && metricsAddress)
      metricsServer = await startMetricsServer({
        ...metricsAddress,
        metrics,
        log,
        health: () => {
          const store = storeHealth();
          return {
            serving: !stopping,
            problem: stopping ? 'stopping' : undefined,
            // Cached logins still work on every instance: failing the check would take them all out.
            degraded: store.up ? undefined : `token store unreachable (${store.problem ?? 'down'})`,
          };
        },
      }).catch(async (err: unknown) => {
        await Promise.all([control.close(), web?.close()]);
        throw err;
      });
  } catch (err) {
    keepAlive.close();
    stopNotifier();
    stopRedirectServers();
    await ports.stopAccepting();
    ports.destroyAll();
    throw err;
  }

  const applyReload = async (): Promise<ReloadSummary> => {
    const next = await loadConfig(options.configFile);
    const portChanges = await ports.apply(await prepare(next));
    const previous = config;
    config = next;
    for (const warning of await startupWarnings(next, options.cacheStore))
      log.warn({ event: 'startup_warning' }, warning);
    return { ...portChanges, ...accountChanges(previous, next) };
  };
  /** One reload at a time: a second SIGHUP during a reload waits for it. */
  let reloading: Promise<unknown> = Promise.resolve();

  return {
    get config() {
      return config;
    },
    get listeners() {
      return ports.listeners;
    },
    tokens,
    ...(web && { webUrl: web.url }),
    describe() {
      return `listening: ${ports.describe() || 'nothing'}; control socket ${options.controlSocket}${web ? `; page ${web.url}` : ''}`;
    },
    reload() {
      const run = reloading.then(applyReload);
      reloading = run.catch(() => undefined);
      return run;
    },
    async stop(graceMs = DEFAULT_SHUTDOWN_GRACE_MS, hurry?: AbortSignal) {
      const started = Date.now();
      stopping = true;
      // A reload under way finishes first, so no port it binds is left open behind the stop.
      await reloading;
      keepAlive.close();
      stopNotifier();
      stopRedirectServers();
      await ports.stopAccepting();
      // Logins waiting for an authorisation nobody can complete any more will not write tokens.
      const awaitingAuthorization = new Set(tokens.pending.list().map((pending) => pending.key));
      tokens.close();
      const controlClosed = control.close();
      await web?.close();
      ports.sendAwayPreAuth();

      const graceOver = sleep(graceMs, undefined, {
        ref: false,
        ...(hurry && { signal: hurry }),
      }).catch(() => undefined);
      let cut = 0;
      if (!(await Promise.race([ports.drained().then(() => true), graceOver.then(() => false)]))) {
        cut = ports.openConnections();
        log.warn(
          { event: 'sessions_cut', sessions: cut, graceMs },
          `grace time over: closing ${cut} session(s) still open`,
        );
        ports.destroyAll();
      }
      // A login that was refreshing a token when its client was sent away still stores the result.
      await Promise.race([
        Promise.all([
          logins.settled((account) => awaitingAuthorization.has(account)),
          controlClosed,
        ]),
        sleep(TOKEN_WRITE_GRACE_MS + identityProviderTimeoutMs, undefined, { ref: false }),
      ]);
      await store.idle();
      await metricsServer?.close();
      return { cut, durationMs: Date.now() - started };
    },
  };
}

/** The authenticator, counting logins under way (by account) so a stop can wait for their token writes. */
class TrackedAuthenticator extends OAuthAuthenticator {
  private readonly currentConfig: () => ProxyConfig;

  constructor(
    private readonly inFlight: InFlight,
    private readonly metrics: Metrics | undefined,
    ...args: ConstructorParameters<typeof OAuthAuthenticator>
  ) {
    super(...args);
    this.currentConfig = args[0];
  }

  override login(request: LoginRequest): Promise<UpstreamCredentials> {
    const account = subjectFor(this.currentConfig(), request.username)?.key ?? request.username;
    const login = this.inFlight.track(super.login(request), account);
    const { metrics } = this;
    if (metrics === undefined) return login;
    return login.then(
      (credentials) => {
        metrics.login(request.protocol, 'success');
        return credentials;
      },
      (err: unknown) => {
        metrics.login(request.protocol, err instanceof LoginFailure ? err.reason : 'error');
        throw err;
      },
    );
  }
}

function accountChanges(
  previous: ProxyConfig,
  next: ProxyConfig,
): Pick<ReloadSummary, 'accountsAdded' | 'accountsRemoved' | 'accountsChanged'> {
  const before = new Map(
    previous.accounts.map((account) => [account.name, JSON.stringify(account)]),
  );
  const after = new Map(next.accounts.map((account) => [account.name, JSON.stringify(account)]));
  return {
    accountsAdded: [...after.keys()].filter((name) => !before.has(name)),
    accountsRemoved: [...before.keys()].filter((name) => !after.has(name)),
    accountsChanged: [...after]
      .filter(([name, text]) => before.has(name) && before.get(name) !== text)
      .map(([name]) => name),
  };
}

async function localTls(
  config: ProxyConfig,
  server: ServerConfig,
): Promise<{ localTls?: { context: tls.SecureContext; implicit: boolean } }> {
  if (!server.localCertificatePath || !server.localKeyPath) return {};
  const [cert, key] = await Promise.all([
    readPem(config, server, 'local_certificate_path', server.localCertificatePath),
    readPem(config, server, 'local_key_path', server.localKeyPath),
  ]);
  try {
    return {
      localTls: {
        context: tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' }),
        implicit: !server.localStarttls,
      },
    };
  } catch (err) {
    throw new ConfigError({
      file: config.file,
      section: server.section,
      key: 'local_certificate_path',
      problem: `certificate and key do not work together: ${(err as Error).message}`,
    });
  }
}

async function readPem(
  config: ProxyConfig,
  server: ServerConfig,
  key: string,
  path: string,
): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError({
      file: config.file,
      section: server.section,
      key,
      problem: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    });
  }
}

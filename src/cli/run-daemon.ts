import type { Logger } from 'pino';
import { ConfigError } from '../config/errors.js';
import { ControlSocketInUseError } from '../control/server.js';
import { UntrustedControlSocketError } from '../control/socket-trust.js';
import { ListenError, startDaemon, type Daemon } from '../daemon/daemon.js';
import { serviceNotifier, type ServiceNotifier } from '../daemon/notify.js';
import { readableByOthers } from '../daemon/startup-warnings.js';
import type { PreAuthLimits } from '../proxy/session.js';
import { UnsafeSecretLocationError } from '../tokens/atomic-write.js';
import { createLogger } from '../log.js';
import { openTokenStore, type OpenedStore } from '../tokens/stores/open-store.js';
import { TokenStoreSetupError } from '../tokens/stores/store-errors.js';
import { authorizeCommandFor } from './authorize-command.js';
import { TerminalAuthorizer } from './terminal-authorizer.js';
import { WebConfigError, WebListenError } from '../web/server.js';
import { webPageUrl, type WebAddress } from '../web/web-address.js';

export interface RunDaemonOptions {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly externalAuth: boolean;
  readonly debug: boolean;
  readonly providerTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly controlSocket: string;
  /** How long a login waits for a pending authorisation when no terminal prompt is running. */
  readonly authorizationWaitMs: number;
  readonly logFile?: string;
  readonly notifyCommand?: string;
  readonly localServerAuth?: boolean;
  /** How long spliced sessions may go on after SIGTERM/SIGINT before they are cut. */
  readonly shutdownGraceMs: number;
  /** Bounds on clients before they log in (connection counts included). */
  readonly limits: PreAuthLimits;
  /** Serve the authorisation page (`--web-address`). */
  readonly web?: WebAddress;
  /** Serve `/metrics` and `/healthz` (`--metrics-address`). */
  readonly metricsAddress?: { readonly host: string; readonly port: number } | undefined;
}

/** How long a login waits while the user pastes the redirect address into the terminal. */
const TERMINAL_LOGIN_WAIT_MS = 240_000;
/** Longest the final log flush may take before the process exits anyway. */
const LOG_FLUSH_TIMEOUT_MS = 2_000;

/**
 * Runs the proxy until SIGTERM/SIGINT; resolves with the exit code.
 *
 *   start ─► every listener bound, control socket up ─► READY=1 (under systemd)
 *     SIGHUP ─► RELOADING=1 ─► re-read the config (a broken one is logged and the old one kept) ─► READY=1
 *     SIGTERM / SIGINT ─► STOPPING=1 ─► goodbye to clients before login, spliced sessions get the
 *       grace time (a second signal cuts it short) ─► token writes finish ─► logs flushed ─► exit 0
 */
export async function runDaemon(options: RunDaemonOptions): Promise<number> {
  const interactive = options.externalAuth && process.stdin.isTTY === true;
  const log = createLogger({
    debug: options.debug,
    pretty: process.stderr.isTTY === true && !options.logFile,
    ...(options.logFile && { file: options.logFile }),
  });
  const notifier = serviceNotifier(log);
  // A log file made by an earlier version, or by hand, keeps its mode: say so when others can read it.
  if (options.logFile)
    for (const warning of await readableByOthers(
      options.logFile,
      'it names users, accounts and sign-in links',
    ))
      log.warn({ event: 'startup_warning' }, warning);

  if (options.externalAuth && !interactive) {
    log.warn(
      { event: 'no_terminal' },
      '--external-auth needs a terminal on stdin; logins for accounts without tokens will be refused',
    );
  }
  const web = options.web;
  const howToAuthorize = interactive
    ? () =>
        'open the sign-in link printed in the terminal where oauth2-mail-proxy runs, and paste the address the browser ends on there'
    : web
      ? () =>
          `open ${webPageUrl(web)} in a browser (oauth2-mail-proxy web-url prints it with its access key)`
      : (account: string) => `run: ${authorizeCommandFor(account, options)}`;

  // Signals that arrive during start-up are answered once it is done, not by Node's default (exit).
  let onStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    onStop = resolve;
  });
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  // One SIGHUP listener for the whole run, its meaning switched as the daemon moves on: removing
  // Node's last listener stops the signal watcher and would drop a signal already on its way in.
  let reloadRequested = false;
  let onHangUp = (): void => {
    reloadRequested = true;
  };
  process.on('SIGHUP', () => onHangUp());

  let store: OpenedStore;
  try {
    store = await openTokenStore(options.cacheStore, log);
  } catch (err) {
    if (!(err instanceof TokenStoreSetupError)) throw err;
    process.stderr.write(`oauth2-mail-proxy: ${err.message}\n`);
    await flush(log);
    return 2;
  }

  let daemon: Daemon;
  try {
    daemon = await startDaemon({
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      store,
      log,
      controlSocket: options.controlSocket,
      loginWaitMs: interactive ? TERMINAL_LOGIN_WAIT_MS : options.authorizationWaitMs,
      identityProviderTimeoutMs: options.providerTimeoutMs,
      upstreamConnectTimeoutMs: options.upstreamTimeoutMs,
      limits: options.limits,
      metricsAddress: options.metricsAddress,
      storeHealth: () => store.health(),
      ...(options.notifyCommand !== undefined && { notifyCommand: options.notifyCommand }),
      localServerAuth: options.localServerAuth === true,
      ...(options.web && { web: options.web }),
      howToAuthorize,
    });
  } catch (err) {
    if (
      err instanceof ConfigError ||
      err instanceof ListenError ||
      err instanceof ControlSocketInUseError ||
      err instanceof UntrustedControlSocketError ||
      err instanceof UnsafeSecretLocationError ||
      err instanceof WebConfigError ||
      err instanceof WebListenError
    ) {
      process.stderr.write(`oauth2-mail-proxy: ${err.message}\n`);
      await store.close();
      await flush(log);
      const isConfig =
        err instanceof ConfigError ||
        err instanceof UnsafeSecretLocationError ||
        err instanceof WebConfigError;
      return isConfig ? 2 : 3;
    }
    throw err;
  }

  const terminal = interactive
    ? new TerminalAuthorizer(daemon.tokens, process.stdin, process.stdout)
    : undefined;
  log.info(
    {
      event: 'ready',
      configFile: daemon.config.file,
      tokenStore: store.location,
      controlSocket: options.controlSocket,
      listeners: daemon.listeners.length,
    },
    `oauth2-mail-proxy ready; ${daemon.describe()}`,
  );
  await notifier.ready(daemon.describe());

  onHangUp = () => void reload(daemon, log, notifier);
  if (reloadRequested) onHangUp();

  const signal = await stopSignal;
  // A reload during the stop would rebind ports that were just closed.
  onHangUp = () => log.info({ event: 'reload_ignored' }, 'stopping; reload ignored');
  const hurry = new AbortController();
  onStop = () => {
    if (hurry.signal.aborted) return;
    log.warn({ event: 'stop_hurried' }, 'second stop signal: closing open sessions now');
    hurry.abort();
  };

  const open = daemon.listeners.reduce((count, listener) => count + listener.connections.size, 0);
  log.info(
    { event: 'stopping', signal, openConnections: open, graceMs: options.shutdownGraceMs },
    `stopping (${signal}); ${open} connection(s) open`,
  );
  await notifier.stopping(
    `stopping: letting ${open} open connection(s) finish (up to ${Math.round(options.shutdownGraceMs / 1000)} s)`,
  );
  terminal?.close();
  const summary = await daemon.stop(options.shutdownGraceMs, hurry.signal);
  await store.close();
  log.info({ event: 'stopped', cut: summary.cut, durationMs: summary.durationMs }, 'stopped');
  await flush(log);
  return 0;
}

/** SIGHUP: re-read the config; a broken one is reported in one line and the running one kept. */
async function reload(daemon: Daemon, log: Logger, notifier: ServiceNotifier): Promise<void> {
  await notifier.reloading();
  log.info({ event: 'reloading', configFile: daemon.config.file }, 'reloading the configuration');
  try {
    const summary = await daemon.reload();
    log.info({ event: 'reloaded', ...summary }, `configuration reloaded; ${daemon.describe()}`);
    await notifier.ready(daemon.describe());
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof ListenError)) {
      log.error(
        { event: 'reload_failed', err },
        'reload failed unexpectedly; the previous configuration stays in use',
      );
    } else {
      log.error(
        { event: 'reload_failed', error: err.message },
        `configuration not reloaded, the previous one stays in use: ${err.message}`,
      );
    }
    await notifier.ready(`reload failed (${(err as Error).message}); still ${daemon.describe()}`);
  }
}

/** Writes out what the logger still buffers; the process may exit right after. */
function flush(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LOG_FLUSH_TIMEOUT_MS);
    timer.unref();
    try {
      log.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

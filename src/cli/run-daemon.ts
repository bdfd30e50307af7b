import { ConfigError } from '../config/errors.js';
import { ControlSocketInUseError } from '../control/server.js';
import { defaultControlSocket } from '../control/socket-path.js';
import { ListenError, startDaemon } from '../daemon/daemon.js';
import { defaultConfigFile, defaultTokenStore } from './paths.js';
import { createLogger } from '../log.js';
import { TerminalAuthoriser } from './terminal-authoriser.js';

export interface RunDaemonOptions {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly externalAuth: boolean;
  readonly debug: boolean;
  readonly providerTimeoutMs: number;
  readonly controlSocket: string;
  /** How long a login waits for a pending authorisation when no terminal prompt is running. */
  readonly authorisationWaitMs: number;
  readonly logFile?: string;
  readonly notifyCommand?: string;
}

/** How long a login waits while the user pastes the redirect address into the terminal. */
const TERMINAL_LOGIN_WAIT_MS = 240_000;

/** Runs the proxy until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(options: RunDaemonOptions): Promise<number> {
  const interactive = options.externalAuth && process.stdin.isTTY === true;
  const log = createLogger({ debug: options.debug, pretty: process.stderr.isTTY === true && !options.logFile, ...(options.logFile && { file: options.logFile }) });

  if (options.externalAuth && !interactive) {
    log.warn({ event: 'no_terminal' }, '--external-auth needs a terminal on stdin; logins for accounts without tokens will be refused');
  }
  const howToAuthorise = interactive
    ? () => 'open the sign-in link printed in the terminal where oauth2-mail-proxy runs, and paste the address the browser ends on there'
    : (account: string) => `run: ${authorizeCommand(account, options)}`;

  let daemon;
  try {
    daemon = await startDaemon({
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      log,
      controlSocket: options.controlSocket,
      loginWaitMs: interactive ? TERMINAL_LOGIN_WAIT_MS : options.authorisationWaitMs,
      identityProviderTimeoutMs: options.providerTimeoutMs,
      ...(options.notifyCommand !== undefined && { notifyCommand: options.notifyCommand }),
      howToAuthorise,
    });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ListenError || err instanceof ControlSocketInUseError) {
      process.stderr.write(`oauth2-mail-proxy: ${err.message}\n`);
      log.flush();
      return err instanceof ConfigError ? 2 : 3;
    }
    throw err;
  }

  const terminal = interactive ? new TerminalAuthoriser(daemon.tokens, process.stdin, process.stdout) : undefined;
  log.info({ event: 'ready', configFile: daemon.config.file, tokenStore: options.cacheStore, listeners: daemon.listeners.length }, 'oauth2-mail-proxy ready');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ event: 'stopping', signal }, 'stopping');
  terminal?.close();
  await daemon.stop();
  log.flush();
  return 0;
}

/**
 * The exact command that authorises `account` against this daemon: the options are repeated
 * only where they differ from the defaults, so the common case reads short.
 */
function authorizeCommand(account: string, options: RunDaemonOptions): string {
  const parts = ['oauth2-mail-proxy', 'authorize', quote(account)];
  if (options.configFile !== defaultConfigFile()) parts.push('--config-file', quote(options.configFile));
  if (options.cacheStore !== defaultTokenStore()) parts.push('--cache-store', quote(options.cacheStore));
  if (options.controlSocket !== defaultControlSocket(options.cacheStore)) parts.push('--control-socket', quote(options.controlSocket));
  return parts.join(' ');
}

function quote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

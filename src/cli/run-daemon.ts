import { ConfigError } from '../config/errors.js';
import { ListenError, startDaemon } from '../daemon/daemon.js';
import { createLogger } from '../log.js';
import { TerminalAuthoriser } from './terminal-authoriser.js';

export interface RunDaemonOptions {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly externalAuth: boolean;
  readonly debug: boolean;
  readonly providerTimeoutMs: number;
  readonly logFile?: string;
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
    : () => 'start oauth2-mail-proxy with --external-auth in a terminal and log in again to get the sign-in link';

  let daemon;
  try {
    daemon = await startDaemon({
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      log,
      loginWaitMs: interactive ? TERMINAL_LOGIN_WAIT_MS : 0,
      identityProviderTimeoutMs: options.providerTimeoutMs,
      howToAuthorise,
    });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ListenError) {
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

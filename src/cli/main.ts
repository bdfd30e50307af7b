#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultControlSocket } from '../control/socket-path.js';
import { authorize } from './authorize.js';
import { check } from './check.js';
import { defaultConfigFile, defaultTokenStore } from './paths.js';
import { DEFAULT_LIMITS } from '../proxy/session.js';
import { runDaemon } from './run-daemon.js';
import { status } from './status.js';
import { webUrl } from './web-url.js';
import { parseWebAddress } from '../web/web-address.js';
import { parseHostPort } from '../config/host-port.js';

import { copyTokens } from './tokens-copy.js';
import { loadConfig } from '../config/load.js';
import { isPostgresUrl } from '../tokens/stores/postgres-store.js';

interface CommonOptions {
  configFile: string;
  cacheStore: string;
  controlSocket?: string;
}

/** The options every command shares, so `authorize` and `status` find the daemon's files. */
function withCommonOptions(command: Command): Command {
  return command
    .option(
      '--config-file <path>',
      'configuration file (email-oauth2-proxy format)',
      absolute,
      defaultConfigFile(),
    )
    .option(
      '--cache-store <path|url>',
      'token store: an INI file (mode 0600), or postgresql://… shared by several instances; tokens encrypted with the mail client password',
      storeLocation,
      defaultTokenStore(),
    )
    .option(
      '--control-socket <path>',
      'control socket shared by the daemon and the CLI (default: control.sock beside the token store)',
      absolute,
    );
}

/** Paths are made absolute once, so logs and the printed authorize command work from any directory. */
const absolute = (path: string): string => resolve(path);

/** A PostgreSQL URL stays as given (libpq's PG* variables and ~/.pgpass fill in the rest). */
const storeLocation = (value: string): string => (isPostgresUrl(value) ? value : resolve(value));

/** Beside a file store; with a database, where the default file store would be. */
const controlSocketOf = (options: CommonOptions): string =>
  options.controlSocket ??
  defaultControlSocket(
    isPostgresUrl(options.cacheStore) ? defaultTokenStore() : options.cacheStore,
  );

function parseMetricsAddress(text: string): { host: string; port: number } {
  const address = parseHostPort(text);
  if (address === undefined)
    throw new InvalidArgumentError('expected [HOST:]PORT, e.g. 127.0.0.1:9431 or 9431');
  return address;
}

function parseCount(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1)
    throw new InvalidArgumentError('expected a whole number, 1 or more');
  return count;
}

function parseCountOrNone(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 0)
    throw new InvalidArgumentError('expected a whole number, 0 or more');
  return count;
}

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new InvalidArgumentError('expected a number of seconds');
  return seconds;
}

/** The `run` command's own options, as commander names them. */
interface RunCommandOptions {
  externalAuth?: boolean;
  authorisationWait: number;
  notifyCommand?: string;
  localServerAuth?: boolean;
  logFile?: string;
  debug?: boolean;
  providerTimeout: number;
  upstreamTimeout: number;
  shutdownGrace: number;
  maxPreauthConnections: number;
  maxPreauthPerAddress: number;
  webAddress?: { host: string; port: number };
  metricsAddress?: { host: string; port: number };
  webCertificate?: string;
  webKey?: string;
  loginDeadline: number;
  earlyUpstream: number;
}

const DEFAULT_SHUTDOWN_GRACE_SECONDS = 10;

/** The installed package's version: package.json sits two folders above dist/cli/main.js. */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

const program = new Command()
  .name('oauth2-mail-proxy')
  .description(
    'Lets password-only mail clients (fetchmail, mutt, mbsync, msmtp) use Office 365 and Gmail: they log in to\n' +
      'local IMAP/POP3/SMTP ports with a password; the proxy logs in upstream with OAuth2 (SASL XOAUTH2).',
  )
  .version(VERSION, '-V, --version', 'print the version and exit')
  .showHelpAfterError();

withCommonOptions(
  program.command('run', { isDefault: true }).description('run the proxy (the default command)'),
)
  .option(
    '--external-auth',
    'print sign-in links and read pasted redirect addresses in this terminal',
  )
  .option(
    '--authorisation-wait <seconds>',
    'how long a login waits for a pending authorisation before "try again later"',
    parseSeconds,
    30,
  )
  .option(
    '--notify-command <command>',
    'run this shell command on token events (details in OAUTH2_MAIL_PROXY_* variables)',
  )
  .option('--log-file <path>', 'write JSON log lines to this file instead of stderr')
  .option('--debug', 'log protocol commands before login (credentials are never logged)')
  .option(
    '--upstream-timeout <seconds>',
    'give up on a mail server that does not connect or answer during login after this long',
    parseSeconds,
    15,
  )
  .option(
    '--provider-timeout <seconds>',
    'give up on an identity provider request after this long (tokens are kept)',
    parseSeconds,
    15,
  )
  .option(
    '--shutdown-grace <seconds>',
    'on SIGTERM/SIGINT, how long logged-in sessions may finish before they are closed',
    parseSeconds,
    DEFAULT_SHUTDOWN_GRACE_SECONDS,
  )
  .option(
    '--max-preauth-connections <count>',
    'connections not yet logged in, across all ports; more are told "too many connections"',
    parseCount,
    DEFAULT_LIMITS.maxPreAuthConnections,
  )
  .option(
    '--login-deadline <seconds>',
    'how long a client may take, all told, to log in (a byte now and then does not extend it)',
    parseSeconds,
    DEFAULT_LIMITS.loginDeadlineMs / 1000,
  )
  .option(
    '--early-upstream <count>',
    'open up to this many upstream connections per server as clients connect, before they log in (0: off)',
    parseCountOrNone,
    DEFAULT_LIMITS.maxEarlyUpstream,
  )
  .option(
    '--max-preauth-per-address <count>',
    'the same, per non-loopback source address',
    parseCount,
    DEFAULT_LIMITS.maxPreAuthConnectionsPerAddress,
  )
  .option(
    '--local-server-auth',
    'receive the sign-in redirect on the redirect_uri (or redirect_listen_address) http port instead of a paste',
  )
  .option(
    '--web-address <[host:]port>',
    'serve the authorisation page here (host defaults to 127.0.0.1; others need --web-certificate)',
    parseWebAddress,
  )
  .option('--web-certificate <path>', "the authorisation page's TLS certificate (PEM)", absolute)
  .option('--web-key <path>', "the authorisation page's TLS private key (PEM)", absolute)
  .option(
    '--metrics-address <[host:]port>',
    'serve Prometheus /metrics and /healthz here (host defaults to 127.0.0.1; no authentication)',
    parseMetricsAddress,
  )
  .addOption(
    new Option('--no-gui', 'accepted for email-oauth2-proxy compatibility (there is no GUI)'),
  )
  .addHelpText(
    'after',
    `
Examples:
  oauth2-mail-proxy --config-file ~/emailproxy.config --external-auth
      run in a terminal; the first login of each account prints a sign-in link and asks for the
      address the browser ends on
  oauth2-mail-proxy --config-file /etc/oauth2-mail-proxy/config.ini
      run as a service; authorise accounts from any shell with "oauth2-mail-proxy authorize ACCOUNT"

Signals: SIGHUP re-reads the configuration (a broken one is logged and the running one kept);
SIGTERM/SIGINT stop: clients not logged in are told goodbye, logged-in sessions get the grace time.

Exit codes: 0 stopped normally, 1 unexpected failure, 2 invalid configuration or command line,
3 a local port or the control socket could not be bound.`,
  )
  .action(async (options: CommonOptions & RunCommandOptions) => {
    if ((options.webCertificate === undefined) !== (options.webKey === undefined))
      program.error('--web-certificate and --web-key go together', { exitCode: 2 });
    process.exitCode = await runDaemon({
      ...(options.webAddress && {
        web: {
          ...options.webAddress,
          ...(options.webCertificate &&
            options.webKey && {
              tls: { certificate: options.webCertificate, key: options.webKey },
            }),
        },
      }),
      metricsAddress: options.metricsAddress,
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      controlSocket: controlSocketOf(options),
      externalAuth: options.externalAuth === true,
      debug: options.debug === true,
      providerTimeoutMs: options.providerTimeout * 1000,
      upstreamTimeoutMs: options.upstreamTimeout * 1000,
      authorizationWaitMs: options.authorisationWait * 1000,
      ...(options.logFile !== undefined && { logFile: options.logFile }),
      ...(options.notifyCommand !== undefined && { notifyCommand: options.notifyCommand }),
      localServerAuth: options.localServerAuth === true,
      shutdownGraceMs: options.shutdownGrace * 1000,
      limits: {
        ...DEFAULT_LIMITS,
        maxPreAuthConnections: options.maxPreauthConnections,
        maxPreAuthConnectionsPerAddress: options.maxPreauthPerAddress,
        loginDeadlineMs: options.loginDeadline * 1000,
        maxEarlyUpstream: options.earlyUpstream,
      },
    });
  });

withCommonOptions(
  program
    .command('authorize <account>')
    .description('authorise an account: sign in, paste the address the browser ends on'),
)
  .addHelpText(
    'after',
    `
Talks to the running proxy when there is one (a waiting login completes at once); otherwise runs the
flow itself and writes the token store, asking for the mail client's password to encrypt it.
The pasted address may come from the terminal or a pipe.

Exit codes: 0 authorised, 1 failed (say why), 2 unknown account or configuration problem.`,
  )
  .action(async (account: string, options: CommonOptions) => {
    process.exitCode = await authorize({
      account,
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      controlSocket: controlSocketOf(options),
    });
  });

withCommonOptions(
  program.command('status').description("show each account's token state from the running proxy"),
)
  .option('--json', 'machine-readable output')
  .action(async (options: CommonOptions & { json?: boolean }) => {
    process.exitCode = await status({
      controlSocket: controlSocketOf(options),
      json: options.json === true,
    });
  });

withCommonOptions(
  program
    .command('check <account>')
    .description(
      'check an account end to end: configuration, token refresh, and a login to every upstream',
    ),
)
  .option(
    '--timeout <seconds>',
    'give up on each identity provider request and upstream connection after this long',
    parseSeconds,
    15,
  )
  .addHelpText(
    'after',
    `
Shows which account section, flow, endpoints, scopes and servers apply; asks for the mail client's
password to decrypt the stored tokens (from the terminal or a pipe); refreshes the token for real
(saving the new refresh token); reads the access token's claims when it is a JWT; then logs in to
each configured upstream with XOAUTH2 and runs a harmless command (IMAP NOOP, POP3 STAT, SMTP NOOP).
Known failures are explained with what to change or run.

Exit codes: 0 every check passed, 1 a check failed, 2 configuration problem or unknown account.`,
  )
  .action(async (account: string, options: CommonOptions & { timeout: number }) => {
    process.exitCode = await check({
      account,
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      controlSocket: controlSocketOf(options),
      timeoutMs: options.timeout * 1000,
    });
  });

withCommonOptions(
  program
    .command('web-url')
    .description(
      "print the running proxy's authorisation page address, with its access key (--web-address)",
    ),
).action(async (options: CommonOptions) => {
  process.exitCode = await webUrl({ cacheStore: options.cacheStore });
});

program
  .command('tokens')
  .description('manage token stores')
  .command('copy')
  .description("copy every account's encrypted tokens from one store to another (never decrypted)")
  .requiredOption(
    '--from <path|url>',
    'the store to read: an INI file or postgresql://…',
    storeLocation,
  )
  .requiredOption(
    '--to <path|url>',
    'the store to write: an INI file or postgresql://…',
    storeLocation,
  )
  .addHelpText(
    'after',
    `
Accounts already identical in the target are left alone, so running it twice changes nothing.
Tokens stay encrypted with each mail client's password; the target works with the same passwords.

Exit codes: 0 copied, 1 a store failed part-way (run it again), 2 a store cannot be opened.`,
  )
  .action(async (options: { from: string; to: string }) => {
    process.exitCode = await copyTokens(options);
  });

// `cache_store` in the config's [emailproxy] section stands in for a --cache-store not given.
program.hook('preAction', async (_program, command) => {
  if (command.getOptionValueSource('cacheStore') !== 'default') return;
  const configFile = command.getOptionValue('configFile') as string | undefined;
  if (configFile === undefined) return;
  // A config that does not load is reported by the command itself, with its own exit code.
  const configured = await loadConfig(configFile).then(
    (config) => config.options.cacheStore,
    () => undefined,
  );
  if (configured !== undefined)
    command.setOptionValueWithSource('cacheStore', configured, 'config');
});

program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : 2);
});

await program.parseAsync(process.argv);

// Whatever still holds the event loop (a paused stdin, a slow log flush) must not keep a finished
// command alive; the daemon has already closed everything it owns when its action returns.
setTimeout(() => process.exit(), 2_000).unref();

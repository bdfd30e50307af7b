#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { runDaemon } from './run-daemon.js';
import { defaultConfigFile, defaultTokenStore } from './paths.js';

/** Exit codes, documented in the README and `--help`. */
export const EXIT = { ok: 0, failure: 1, config: 2, listen: 3 } as const;

const program = new Command()
  .name('oauth2-mail-proxy')
  .description(
    'Lets password-only mail clients (fetchmail, mutt, mbsync, msmtp) use Office 365 and Gmail: they log in to\n' +
      'local IMAP/POP3/SMTP ports with a password; the proxy logs in upstream with OAuth2 (SASL XOAUTH2).',
  )
  .option('--config-file <path>', 'configuration file (email-oauth2-proxy format)', defaultConfigFile())
  .option('--cache-store <path>', 'token store file (INI, 0600; tokens encrypted with the mail client password)', defaultTokenStore())
  .option('--external-auth', 'when an account needs authorising, print the sign-in link and read the pasted redirect address from this terminal')
  .option('--log-file <path>', 'write JSON log lines to this file instead of stderr')
  .option('--debug', 'log protocol commands before login (credentials are never logged)')
  .option('--provider-timeout <seconds>', 'give up on an identity provider request after this long (tokens are kept)', parseSeconds, 15)
  .addOption(new Option('--no-gui', 'accepted for email-oauth2-proxy compatibility (there is no GUI)'))
  .addOption(new Option('--local-server-auth', 'accepted for email-oauth2-proxy compatibility; not implemented yet').hideHelp())
  .addHelpText(
    'after',
    `
Examples:
  oauth2-mail-proxy --config-file ~/emailproxy.config --external-auth
      run in a terminal; the first login of each account prints a sign-in link and asks for the address
      the browser ends on
  oauth2-mail-proxy --config-file /etc/oauth2-mail-proxy/config.ini --cache-store /var/lib/oauth2-mail-proxy/tokens.ini
      run as a service

Exit codes:
  0  stopped normally (SIGTERM / SIGINT)
  1  unexpected failure
  2  invalid configuration or command line
  3  a local port could not be bound`,
  )
  .action(async (options: { configFile: string; cacheStore: string; externalAuth?: boolean; logFile?: string; debug?: boolean; providerTimeout: number }) => {
    process.exitCode = await runDaemon({
      providerTimeoutMs: options.providerTimeout * 1000,
      configFile: options.configFile,
      cacheStore: options.cacheStore,
      externalAuth: options.externalAuth === true,
      debug: options.debug === true,
      ...(options.logFile !== undefined && { logFile: options.logFile }),
    });
  });

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return seconds;
}

program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.config);
});

await program.parseAsync(process.argv);

// Whatever still holds the event loop (a paused stdin, a slow log flush) must not keep a stopped
// proxy alive; the daemon has already closed everything it owns.
setTimeout(() => process.exit(), 2_000).unref();

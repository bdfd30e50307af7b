import { defaultControlSocket } from '../control/socket-path.js';
import { defaultConfigFile, defaultTokenStore } from './paths.js';
import { redactUrl } from '../tokens/stores/postgres-store.js';

/** The files a command was run with. */
export interface CommandFiles {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly controlSocket: string;
}

/**
 * The exact command that authorises `account` with these files, ready to paste into a shell:
 * options are repeated only where they differ from what the command finds by default there, so
 * the common case reads short. Under systemd the daemon's own defaults come from
 * `STATE_DIRECTORY`/`CONFIGURATION_DIRECTORY`, which a shell does not have, so they are left out.
 */
export function authorizeCommandFor(account: string, files: CommandFiles): string {
  const shell: NodeJS.ProcessEnv = {
    ...process.env,
    STATE_DIRECTORY: undefined,
    CONFIGURATION_DIRECTORY: undefined,
  };
  const parts = ['oauth2-mail-proxy', 'authorize', shellQuote(account)];
  if (files.configFile !== defaultConfigFile(shell))
    parts.push('--config-file', shellQuote(files.configFile));
  if (files.cacheStore !== defaultTokenStore(shell))
    // A database password never goes into a printed command (~/.pgpass or PGPASSWORD supply it).
    parts.push('--cache-store', shellQuote(redactUrl(files.cacheStore)));
  if (files.controlSocket !== defaultControlSocket(files.cacheStore))
    parts.push('--control-socket', shellQuote(files.controlSocket));
  return parts.join(' ');
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

import { defaultControlSocket } from '../control/socket-path.js';
import { defaultConfigFile, defaultTokenStore } from './paths.js';

/** The files a command was run with. */
export interface CommandFiles {
  readonly configFile: string;
  readonly cacheStore: string;
  readonly controlSocket: string;
}

/**
 * The exact command that authorises `account` with these files, ready to paste: options are
 * repeated only where they differ from the defaults, so the common case reads short. (The same
 * rule as the daemon's "run: ..." hint.)
 */
export function authorizeCommandFor(account: string, files: CommandFiles): string {
  const parts = ['oauth2-mail-proxy', 'authorize', shellQuote(account)];
  if (files.configFile !== defaultConfigFile()) parts.push('--config-file', shellQuote(files.configFile));
  if (files.cacheStore !== defaultTokenStore()) parts.push('--cache-store', shellQuote(files.cacheStore));
  if (files.controlSocket !== defaultControlSocket(files.cacheStore)) parts.push('--control-socket', shellQuote(files.controlSocket));
  return parts.join(' ');
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

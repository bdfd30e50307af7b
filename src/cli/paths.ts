import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where things live when no option says otherwise. Under systemd the unit's StateDirectory= /
 * ConfigurationDirectory= win; otherwise the XDG base directories.
 */
export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONFIGURATION_DIRECTORY)
    return join(env.CONFIGURATION_DIRECTORY.split(':')[0]!, 'config.ini');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'oauth2-mail-proxy', 'config.ini');
}

export function defaultTokenStore(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STATE_DIRECTORY) return join(env.STATE_DIRECTORY.split(':')[0]!, 'tokens.ini');
  return join(
    env.XDG_STATE_HOME || join(homedir(), '.local', 'state'),
    'oauth2-mail-proxy',
    'tokens.ini',
  );
}

import { dirname, join } from 'node:path';

/**
 * The control socket lives beside the token store by default: the daemon and the CLI are given the
 * same `--cache-store`, so they meet there without another option, and the store's directory is
 * already owner-only (0700).
 */
export function defaultControlSocket(tokenStore: string): string {
  return join(dirname(tokenStore), 'control.sock');
}

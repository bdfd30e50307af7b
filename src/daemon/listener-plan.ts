import type { ServerConfig } from '../config/types.js';

/** What a reloaded config means for the bound ports. */
export interface ListenerPlan<L> {
  /** Sections on an address and port nothing listens on yet: bind them. */
  readonly bind: readonly ServerConfig[];
  /** Listeners whose address and port are gone from the config: stop accepting on them. */
  readonly unbind: readonly L[];
  /** Listeners that stay bound, with the section they serve new connections by from now on. */
  readonly keep: ReadonlyArray<{
    readonly listener: L;
    readonly server: ServerConfig;
    readonly changed: boolean;
  }>;
}

/**
 * Matches the running listeners with a reloaded config's server sections by local address and port,
 * the only things that need a socket of their own. A section whose other settings changed
 * (upstream, protocol, certificate, CA) keeps its port and is updated in place: the port never
 * stops accepting, new connections use the new settings, established ones keep theirs.
 */
export function planListeners<L extends { readonly server: ServerConfig }>(
  current: readonly L[],
  next: readonly ServerConfig[],
): ListenerPlan<L> {
  const running = new Map(current.map((listener) => [bindingOf(listener.server), listener]));
  const bind: ServerConfig[] = [];
  const keep: Array<{ listener: L; server: ServerConfig; changed: boolean }> = [];
  for (const server of next) {
    const listener = running.get(bindingOf(server));
    if (listener === undefined) {
      bind.push(server);
      continue;
    }
    running.delete(bindingOf(server));
    keep.push({ listener, server, changed: !sameSection(listener.server, server) });
  }
  return { bind, unbind: [...running.values()], keep };
}

/** `address|port`: what the kernel sees as one listening socket. */
function bindingOf(server: ServerConfig): string {
  return `${server.localAddress}|${server.localPort}`;
}

function sameSection(a: ServerConfig, b: ServerConfig): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof ServerConfig)[]);
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

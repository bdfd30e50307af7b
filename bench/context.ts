/** What every scenario gets: the peers, the running proxy, the routes to each server, the logins. */
import type { ProxyProcess } from '../test/support/proxy-process.js';
import type { RouteName } from './interleave.js';
import type { BenchPeers } from './peers.js';
import type { Credentials } from './protocols/credentials.js';
import type { Settings } from './settings.js';
import type { Endpoint } from './wire.js';

/** Where each route reaches a protocol: the server itself, or the proxy in front of it. */
export type Routes = Record<RouteName, Endpoint>;

/** What every scenario gets. */
export interface Context {
  readonly settings: Settings;
  readonly peers: BenchPeers;
  readonly proxy: ProxyProcess;
  readonly imap: Routes;
  readonly pop3: Routes;
  readonly smtp: Routes;
  /** The main account; `accessToken` is the one in the token store. */
  readonly main: Credentials;
  readonly second: Credentials;
  /** Progress for the operator (stderr), never part of the result. */
  readonly progress: (text: string) => void;
}

/** The proxy's process id. */
export function proxyPid(context: Pick<Context, 'proxy'>): number {
  const pid = context.proxy.child.pid;
  if (pid === undefined) throw new Error('the proxy has no process id');
  return pid;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

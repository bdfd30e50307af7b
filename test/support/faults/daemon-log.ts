/**
 * Reading the daemon's JSON log in fault tests: the events of one kind, and the proof that a fault
 * was handled rather than escaping as an unexpected error.
 */
import type { ProxyProcess } from '../proxy-process.js';

/** Log events named `event`, oldest first. */
export function eventsNamed(proxy: ProxyProcess, event: string): Array<Record<string, unknown>> {
  return proxy.events().filter((line) => line.event === event);
}

/**
 * Events that mean a fault escaped the code meant to handle it: an unexpected session failure,
 * a listener error, a crash report. Tests expect none.
 */
export function unexpectedErrors(proxy: ProxyProcess): Array<Record<string, unknown>> {
  return proxy
    .events()
    .filter(
      (line) =>
        line.event === 'session_error' ||
        line.event === 'listener_error' ||
        (typeof line.level === 'number' && line.level >= 60),
    );
}

/**
 * The `disconnect` event of the connection that came from `remote` (a source address only that
 * connection used), once the daemon has logged it; undefined until then. Needs `--debug`, which
 * logs every connection's arrival.
 */
export function disconnectOf(
  proxy: ProxyProcess,
  remote: string,
): Record<string, unknown> | undefined {
  const events = proxy.events();
  const connections = new Set(
    events
      .filter((line) => line.event === 'connect' && line.remote === remote)
      .map((line) => line.conn),
  );
  return events.find((line) => line.event === 'disconnect' && connections.has(line.conn));
}

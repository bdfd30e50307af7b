import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

/** Tells the service manager how the daemon is doing (sd_notify); does nothing outside systemd. */
export interface ServiceNotifier {
  /** Start-up or a reload is complete; `status` says what is listening. */
  ready(status: string): Promise<void>;
  /** A reload has begun (ExecReload / SIGHUP). */
  reloading(): Promise<void>;
  /** The daemon is stopping; `status` says what it is waiting for. */
  stopping(status: string): Promise<void>;
  /** Free-form status line for `systemctl status`. */
  status(status: string): Promise<void>;
}

/** Longest a `systemd-notify` call may take; it waits for the manager to process the message. */
const NOTIFY_TIMEOUT_MS = 5_000;

/**
 * The notifier for this process. Node cannot send on an AF_UNIX datagram socket, so the messages go
 * through systemd's own `systemd-notify` (present wherever systemd is), with `--pid=` naming this
 * process. systemd accepts them with `NotifyAccess=all`; `systemd-notify` then waits (BARRIER=1)
 * until the manager has processed each one, so systemd can still tell which unit the short-lived
 * sender belonged to.
 *
 * `NOTIFY_SOCKET` is taken out of the environment, so hooks the daemon runs (`--notify-command`)
 * cannot send notifications in its name by accident.
 */
export function serviceNotifier(
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): ServiceNotifier {
  const socket = env.NOTIFY_SOCKET;
  delete env.NOTIFY_SOCKET;
  if (!socket) return SILENT;

  let queue: Promise<void> = Promise.resolve();
  let warned = false;
  const send = (fields: Readonly<Record<string, string>>): Promise<void> => {
    const args = [
      `--pid=${process.pid}`,
      ...Object.entries(fields).map(([name, value]) => `${name}=${oneLine(value)}`),
    ];
    // In order: READY=1 must never overtake the RELOADING=1 before it.
    queue = queue.then(
      () =>
        new Promise<void>((resolve) => {
          execFile(
            'systemd-notify',
            args,
            { env: { ...env, NOTIFY_SOCKET: socket }, timeout: NOTIFY_TIMEOUT_MS },
            (err, _stdout, stderr) => {
              if (err && !warned) {
                warned = true;
                log.warn(
                  {
                    event: 'notify_socket_failed',
                    err: err.message,
                    stderr: stderr.trim().slice(0, 300),
                  },
                  'cannot tell systemd about readiness (is systemd-notify installed?); with Type=notify the unit will time out',
                );
              }
              resolve();
            },
          );
        }),
    );
    return queue;
  };

  return {
    ready: (status) => send({ READY: '1', STATUS: status }),
    reloading: () =>
      send({
        RELOADING: '1',
        MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n),
        STATUS: 'reloading the configuration',
      }),
    stopping: (status) => send({ STOPPING: '1', STATUS: status }),
    status: (status) => send({ STATUS: status }),
  };
}

const SILENT: ServiceNotifier = {
  ready: () => Promise.resolve(),
  reloading: () => Promise.resolve(),
  stopping: () => Promise.resolve(),
  status: () => Promise.resolve(),
};

/** sd_notify messages are newline-separated assignments; a value must not start another one. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

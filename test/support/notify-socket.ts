import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Receives sd_notify datagrams the way systemd does: an AF_UNIX SOCK_DGRAM socket to point
 * `NOTIFY_SOCKET` at. Node cannot bind one, so a few lines of Python do, printing each datagram as
 * a JSON string per line. Received file descriptors (systemd-notify's BARRIER=1 pipe) are not
 * accepted, so the kernel closes them and the sender's barrier completes, as with systemd.
 */
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode("utf-8", "replace")), flush=True)
`;

/** One notification: its `KEY=value` assignments. */
export type Notification = Readonly<Record<string, string>>;

export class NotifySocket {
  /** Every notification so far, in order (BARRIER=1 messages left out). */
  readonly received: Notification[] = [];
  private pending = '';
  private waiters = new Set<() => void>();
  private bound = false;

  private constructor(
    readonly path: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => {
      this.pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = this.pending.indexOf('\n')) >= 0) {
        const line = this.pending.slice(0, newline).trim();
        this.pending = this.pending.slice(newline + 1);
        if (line === '') continue;
        const datagram = JSON.parse(line) as string;
        if (datagram === 'bound') this.bound = true;
        if (datagram === 'bound' || datagram === 'BARRIER=1') continue;
        this.received.push(parse(datagram));
      }
      for (const wake of this.waiters) wake();
    });
  }

  /** Binds a socket at `path` (which must not exist). */
  static async bind(path: string): Promise<NotifySocket> {
    const child = spawn('python3', ['-c', RECEIVER, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const receiver = new NotifySocket(path, child);
    const deadline = Date.now() + 10_000;
    while (!receiver.bound) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the notify socket receiver did not bind ${path}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return receiver;
  }

  /** The first notification from index `from` on that satisfies `matches`. */
  async next(
    matches: (notification: Notification) => boolean,
    from = 0,
    timeoutMs = 15_000,
  ): Promise<{ fields: Notification; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(
        (notification, i) => i >= from && matches(notification),
      );
      if (index >= 0) return { fields: this.received[index]!, index };
      if (Date.now() > deadline)
        throw new Error(`no matching notification; received: ${JSON.stringify(this.received)}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 200);
        this.waiters.add(wake);
      });
    }
  }

  close(): void {
    this.child.kill();
  }
}

function parse(datagram: string): Notification {
  const fields: Record<string, string> = {};
  for (const line of datagram.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) fields[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return fields;
}

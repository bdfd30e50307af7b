/**
 * A private, real Dovecot (2.3) instance as the XOAUTH2 upstream: IMAP, IMAPS, POP3 and POP3S on
 * loopback ports chosen at run time, tokens checked by introspection at the test identity
 * provider, mail in Maildirs owned by `nobody`. Runs as root in a container without systemd.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { makeTestCa } from './certs.js';
import type { TestCa } from './certs.js';
import { dovecotConfig, dovecotPaths, oauth2PassdbConfig } from './dovecot-config.js';
import type { DovecotPorts } from './dovecot-config.js';
import { freePorts } from './free-ports.js';
import type { Idp } from './idp.js';

export interface DovecotOptions {
  /** The identity provider whose introspection endpoint validates tokens. */
  readonly idp: Pick<Idp, 'urls' | 'clients'>;
  /** SASL mechanisms to advertise; default `xoauth2` (as Office 365). `xoauth2 oauthbearer` offers both. */
  readonly mechanisms?: string;
  /** Certificates to serve; default a fresh CA made in the instance's directory. */
  readonly certs?: TestCa;
  /** Log every auth step (Dovecot's `auth_debug` and the oauth2 passdb's `debug`). */
  readonly authDebug?: boolean;
  /**
   * More `dovecot.conf` text, appended last so it overrides (Dovecot merges repeated sections):
   * e.g. the benchmark's limits for thousands of concurrent sessions. Default none.
   */
  readonly extraConfig?: string;
}

export interface Dovecot {
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly pop3Port: number;
  readonly pop3sPort: number;
  /** CA certificate a client must trust for the TLS ports (`localhost` and `127.0.0.1`). */
  readonly caFile: string;
  /** The instance's temp directory (removed by {@link Dovecot.stop}). */
  readonly dir: string;
  /** Puts `rawMessage` into `user`'s `Maildir/new` (bytes as given, so use CRLF); returns the file path. */
  deliver(user: string, rawMessage: Buffer): Promise<string>;
  /** Everything Dovecot logged so far. */
  logText(): string;
  /** Stops Dovecot, waits until its ports are closed and its processes gone, and removes its directory. */
  stop(): Promise<void>;
}

const NOBODY = { uid: 65534, gid: 65534 };
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
/** How long the master gets to stop its children before the group is killed. */
const SHUTDOWN_GRACE_MS = 150;

// Dovecot is started in its own process group; if a test run ends without stopping it, the
// whole group goes with the Node process instead of lingering on the ports.
const runningGroups = new Set<number>();
let exitHookInstalled = false;
function killGroupsOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of runningGroups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts Dovecot in the foreground; resolves once every listener accepts connections. */
async function launch(
  configFile: string,
  logFile: string,
  ports: DovecotPorts,
): Promise<ChildProcess> {
  const child = spawn('dovecot', ['-F', '-c', configFile], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // 'close' comes after stderr is drained, so the error names the cause (e.g. a port in use).
  const failed = new Promise<never>((_resolve, reject) => {
    child.once('close', () =>
      reject(new Error(`dovecot exited at start (code ${child.exitCode}): ${stderr.trim()}`)),
    );
  });
  failed.catch(() => undefined);

  // The master binds every listener it can before giving up on one that is taken, so open ports
  // alone prove nothing; it logs "starting up" only once all of them are bound.
  const ready = (async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const waitFor = async (condition: () => boolean | Promise<boolean>): Promise<boolean> => {
      while (!(await condition())) {
        if (child.exitCode !== null) return failed;
        if (Date.now() > deadline) return false;
        await sleep(10);
      }
      return true;
    };
    if (!(await waitFor(() => readLog(logFile).includes(' starting up ')))) return false;
    for (const port of Object.values(ports)) {
      if (!(await waitFor(() => canConnect(port)))) return false;
    }
    return true;
  })();
  const started = await Promise.race([ready, failed]);
  if (!started) {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    throw new Error(
      `dovecot did not open its ports within ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`,
    );
  }
  if (child.pid !== undefined) runningGroups.add(child.pid);
  child.unref();
  // The pipe stays open (Dovecot may still write to it) but must not keep Node alive either.
  (child.stderr as Socket | null)?.unref();
  return child;
}

function introspectionUrl(idp: Pick<Idp, 'urls' | 'clients'>): string {
  const url = new URL(idp.urls.introspect);
  url.username = encodeURIComponent(idp.clients.introspection.clientId);
  url.password = encodeURIComponent(idp.clients.introspection.clientSecret);
  return url.href;
}

let deliveries = 0;

/** Starts a Dovecot instance for `opts.idp`'s tokens. Takes about 0.1 s (plus 50 ms to make certificates). */
export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  killGroupsOnExit();
  const dir = await mkdtemp(join(tmpdir(), 'dovecot-'));
  // Dovecot's mail processes run as nobody and need to traverse into the homes below.
  await chmod(dir, 0o755);
  const paths = dovecotPaths(dir);
  await Promise.all([mkdir(paths.baseDir), mkdir(paths.stateDir), mkdir(paths.homes)]);
  await chown(paths.homes, NOBODY.uid, NOBODY.gid);
  const certs = opts.certs ?? (await makeTestCa(dir));

  let child: ChildProcess | undefined;
  let ports: DovecotPorts | undefined;
  for (let attempt = 1; child === undefined; attempt += 1) {
    const [imap = 0, imaps = 0, pop3 = 0, pop3s = 0] = await freePorts(4);
    ports = { imap, imaps, pop3, pop3s };
    const settings = {
      dir,
      ports,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      mechanisms: opts.mechanisms ?? 'xoauth2',
      introspectionUrl: introspectionUrl(opts.idp),
      authDebug: opts.authDebug ?? false,
      extraConfig: opts.extraConfig ?? '',
    };
    await writeFile(paths.oauth2, oauth2PassdbConfig(settings), { mode: 0o600 });
    await writeFile(paths.config, dovecotConfig(settings));
    // A stale penalty socket from an earlier run would bring the failed-login delay back; a log
    // from a failed attempt would fake readiness.
    await rm(join(paths.baseDir, 'anvil-auth-penalty'), { force: true });
    await rm(paths.log, { force: true });
    try {
      child = await launch(paths.config, paths.log, ports);
    } catch (error) {
      const portTaken = error instanceof Error && error.message.includes('Address already in use');
      if (!portTaken || attempt >= START_ATTEMPTS) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const master = child;
  const { imap, imaps, pop3, pop3s } = ports as DovecotPorts;

  return {
    imapPort: imap,
    imapsPort: imaps,
    pop3Port: pop3,
    pop3sPort: pop3s,
    caFile: certs.caFile,
    dir,
    async deliver(user: string, rawMessage: Buffer): Promise<string> {
      const home = join(paths.homes, user);
      const maildir = join(home, 'Maildir');
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true });
      for (const owned of [
        home,
        maildir,
        join(maildir, 'cur'),
        join(maildir, 'new'),
        join(maildir, 'tmp'),
      ]) {
        await chown(owned, NOBODY.uid, NOBODY.gid);
      }
      deliveries += 1;
      const seconds = Math.floor(Date.now() / 1000);
      const name = `${seconds}.M${deliveries}P${process.pid}.oauth2-mail-proxy-test,S=${rawMessage.length}`;
      const file = join(maildir, 'new', name);
      await writeFile(file, rawMessage, { mode: 0o600 });
      await chown(file, NOBODY.uid, NOBODY.gid);
      return file;
    },
    logText: () => readLog(paths.log),
    async stop(): Promise<void> {
      const pid = master.pid;
      if (pid !== undefined && master.exitCode === null && master.signalCode === null) {
        // What `doveadm stop` does, minus its wait: the master stops its children at once, then
        // sleeps a fixed second (listeners still open) before it exits. Nothing is left to wait
        // for after a moment, so the rest of the group is killed instead of waited for.
        master.ref();
        master.kill('SIGTERM');
        await Promise.race([exited(master), sleep(SHUTDOWN_GRACE_MS)]);
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // the group is already gone
        }
        await exited(master);
      }
      if (pid !== undefined) runningGroups.delete(pid);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

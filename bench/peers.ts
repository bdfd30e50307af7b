/**
 * The real peers of a benchmark run, started once: the test identity provider, Dovecot (IMAPS,
 * POP3S) checking XOAUTH2 tokens against it, the SMTP submission server (STARTTLS) in a child
 * process, and the token store the proxy reads. The proxy itself is started by the scenarios.
 */
import { MANY_CONNECTIONS } from '../test/peers/dovecot-config.js';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTestCa, type TestCa } from '../test/peers/certs.js';
import { startDovecot, type Dovecot } from '../test/peers/dovecot.js';
import { freePorts } from '../test/peers/free-ports.js';
import {
  OFFICE365_TEST_SCOPE,
  publicClientAccountLines,
  startIdp,
  type Idp,
} from '../test/peers/idp.js';
import { ProxyProcess } from '../test/support/proxy-process.js';
import { FileTokenStore } from '../src/tokens/stores/file-store.js';
import { startDelayRelay, type DelayRelay } from './delay-relay.js';
import { findProcess } from './process-stats.js';
import type { Credentials } from './protocols/credentials.js';
import type { SmtpChildReady, SmtpChildStart, SmtpChildTaken } from './smtp-upstream-child.js';
import { WAN_ONE_WAY_MS } from './settings.js';
import { startStunnel, type Stunnel } from './stunnel.js';
import { Vault } from '../src/tokens/vault/vault.js';
import { sealTokens } from '../test/support/sealed-tokens.js';

/** A mailbox and the local password its mail client uses with the proxy. */
export interface Account {
  readonly user: string;
  readonly password: string;
}

/** The mailbox every measurement reads and sends as. */
export const MAIN_ACCOUNT: Account = {
  user: 'john.smith@example.com',
  password: 'bench-local-secret-1',
};
/** A second mailbox, whose first login shows whether a key derivation holds up other sessions. */
export const SECOND_ACCOUNT: Account = {
  user: 'jane.doe@example.com',
  password: 'bench-local-secret-2',
};

/** The SMTP upstream running in its child process. */
export interface SmtpPeer {
  readonly port: number;
  readonly pid: number;
  readonly ca: Buffer;
  readonly caFile: string;
  /** Sizes of the messages accepted since the last call. */
  take(): Promise<number[]>;
  stop(): Promise<void>;
}

const SMTP_CHILD = fileURLToPath(new URL('./smtp-upstream-child.js', import.meta.url));

async function startSmtpChild(idp: Idp, certs: TestCa): Promise<SmtpPeer> {
  const child: ChildProcess = fork(SMTP_CHILD, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.send({ idp: { urls: idp.urls, clients: idp.clients }, certs } satisfies SmtpChildStart);
  const [ready] = (await once(child, 'message')) as [SmtpChildReady];
  return {
    port: ready.port,
    pid: child.pid ?? 0,
    ca: await readFile(certs.caFile),
    caFile: certs.caFile,
    async take(): Promise<number[]> {
      child.send('take');
      const [taken] = (await once(child, 'message')) as [SmtpChildTaken];
      return taken.sizes;
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

/** The peers of one run, and the proxy configuration and token store that point at them. */
export class BenchPeers {
  private readonly vault = new Vault();
  readonly store: FileTokenStore;

  private constructor(
    readonly dir: string,
    readonly idp: Idp,
    readonly dovecot: Dovecot,
    readonly dovecotCa: Buffer,
    readonly smtp: SmtpPeer,
    /** stunnel in client mode in front of each server: `imap`, `pop3`, `smtp`. */
    readonly stunnel: Stunnel,
    /** Dovecot's IMAPS port as if across a wide-area network ({@link WAN_ONE_WAY_MS} each way). */
    readonly farImap: DelayRelay,
    /**
     * The proxy's local ports: IMAP, POP3, SMTP, and `farImap`: IMAP to Dovecot through the
     * delaying relay.
     */
    readonly ports: {
      readonly imap: number;
      readonly pop3: number;
      readonly smtp: number;
      readonly farImap: number;
    },
  ) {
    this.store = new FileTokenStore(join(dir, 'tokens.ini'));
  }

  static async start(): Promise<BenchPeers> {
    const dir = await mkdtemp(join(tmpdir(), 'omp-bench-'));
    const idp = await startIdp({ defaultUser: MAIN_ACCOUNT.user });
    const smtpCertDir = join(dir, 'smtp-certs');
    await mkdir(smtpCertDir);
    const [dovecot, smtp] = await Promise.all([
      startDovecot({ idp, extraConfig: MANY_CONNECTIONS }),
      makeTestCa(smtpCertDir).then((certs) => startSmtpChild(idp, certs)),
    ]);
    // Only now: ports picked while Dovecot picks its own could be the same ones.
    const [stunnel, farImap] = await Promise.all([
      startStunnel(dir, [
        { name: 'imap', port: dovecot.imapsPort, caFile: dovecot.caFile },
        { name: 'pop3', port: dovecot.pop3sPort, caFile: dovecot.caFile },
        { name: 'smtp', port: smtp.port, caFile: smtp.caFile, starttls: 'smtp' },
      ]),
      startDelayRelay(dovecot.imapsPort, WAN_ONE_WAY_MS),
    ]);
    const [imap = 0, pop3 = 0, smtpPort = 0, farImapPort = 0] = await freePorts(4);
    const peers = new BenchPeers(
      dir,
      idp,
      dovecot,
      await readFile(dovecot.caFile),
      smtp,
      stunnel,
      farImap,
      { imap, pop3, smtp: smtpPort, farImap: farImapPort },
    );
    return peers;
  }

  /** The proxy's configuration: one listener per protocol in front of the peers, and both accounts. */
  proxyConfig(): string {
    const account = ({ user }: Account): string[] => [
      ...publicClientAccountLines(this.idp, user),
      '',
    ];
    return [
      `[IMAP-${this.ports.imap}]`,
      'server_address = 127.0.0.1',
      `server_port = ${this.dovecot.imapsPort}`,
      `server_ca_file = ${this.dovecot.caFile}`,
      '',
      `[POP-${this.ports.pop3}]`,
      'server_address = 127.0.0.1',
      `server_port = ${this.dovecot.pop3sPort}`,
      `server_ca_file = ${this.dovecot.caFile}`,
      '',
      `[IMAP-${this.ports.farImap}]`,
      'server_address = 127.0.0.1',
      `server_port = ${this.farImap.port}`,
      `server_ca_file = ${this.dovecot.caFile}`,
      '',
      `[SMTP-${this.ports.smtp}]`,
      'server_address = 127.0.0.1',
      `server_port = ${this.smtp.port}`,
      'server_starttls = True',
      `server_ca_file = ${this.smtp.caFile}`,
      '',
      ...account(MAIN_ACCOUNT),
      ...account(SECOND_ACCOUNT),
    ].join('\n');
  }

  /**
   * Stores fresh tokens for `account` as an earlier authorisation would have: a real code flow at
   * the identity provider, encrypted with the account's password. `expired` stores an access
   * token that expired a minute ago; `keepSalt` keeps the stored salt, so a running proxy already
   * holds the key (as after a refresh it made itself). Returns what a direct client needs.
   */
  async seed(
    account: Account,
    options: { expired?: boolean; keepSalt?: boolean } = {},
  ): Promise<Credentials> {
    const issued = await this.idp.issueTokensFor(account.user, OFFICE365_TEST_SCOPE);
    const now = Math.floor(Date.now() / 1000);
    const existing = options.keepSalt ? await this.store.read(account.user) : undefined;
    const fields = await sealTokens(
      {
        accessToken: issued.accessToken,
        accessTokenExpiry: options.expired ? now - 60 : now + issued.expiresIn,
        refreshToken: issued.refreshToken,
      },
      account.password,
      existing,
      this.vault,
    );
    await this.store.write(account.user, fields);
    return { ...account, accessToken: issued.accessToken };
  }

  /** Starts the built proxy as its own process on this configuration and waits until it is ready. */
  async startProxy(env: NodeJS.ProcessEnv = {}): Promise<ProxyProcess> {
    const proxy = await ProxyProcess.start({
      dir: this.dir,
      config: this.proxyConfig(),
      env,
      args: ['--early-upstream', '16'],
    });
    await proxy.ready();
    return proxy;
  }

  /** Dovecot's master process (its services are its children). */
  dovecotPid(): number {
    const pid = findProcess(`-c ${this.dovecot.dir}/dovecot.conf`);
    if (pid === undefined) throw new Error('Dovecot is not running');
    return pid;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([
      this.stunnel.stop(),
      this.farImap.close(),
      this.dovecot.stop(),
      this.idp.stop(),
      this.smtp.stop(),
    ]);
    await rm(this.dir, { recursive: true, force: true });
  }
}

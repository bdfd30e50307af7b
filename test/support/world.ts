import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../peers/free-ports.js';
import {
  OFFICE365_TEST_SCOPE,
  publicClientAccountLines,
  startIdp,
  type Idp,
  type IdpOptions,
} from '../peers/idp.js';
import { startDovecot, type Dovecot } from '../peers/dovecot.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';
import { PROXY_BIN, ProxyProcess } from './proxy-process.js';
import { sealTokens } from './sealed-tokens.js';

/** The mailbox every end-to-end test reads. */
export const USER = 'john.smith@example.com';
/** The password the mail client uses with the proxy (it encrypts the stored tokens). */
export const PASSWORD = 'fetchmail local secret';

/** A `[PROTOCOL-port]` section in front of a local TLS server whose CA is `caFile`. */
export function serverSection(
  protocol: 'IMAP' | 'POP' | 'SMTP',
  localPort: number,
  upstreamPort: number,
  caFile: string,
): string {
  return [
    `[${protocol}-${localPort}]`,
    'server_address = localhost',
    `server_port = ${upstreamPort}`,
    `server_ca_file = ${caFile}`,
    '',
  ].join('\n');
}

/**
 * Real peers for end-to-end tests: the test identity provider (shaped like Microsoft's), Dovecot
 * checking XOAUTH2 tokens against it, a temp dir, and free local ports for the proxy.
 */
export class World {
  private readonly ownProxies: ProxyProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly idp: Idp,
    readonly dovecot: Dovecot,
    /** Local ports for the proxy: [imap, pop3, smtp, spare...]. */
    readonly ports: number[],
  ) {}

  /** `dovecotConfig`: extra Dovecot settings (e.g. `MANY_CONNECTIONS` for hundreds of sessions). */
  static async start(
    idpOptions: IdpOptions = {},
    options: { dovecotConfig?: string } = {},
  ): Promise<World> {
    const dir = await mkdtemp(join(tmpdir(), 'omp-e2e-'));
    const idp = await startIdp({ defaultUser: USER, ...idpOptions });
    const dovecot = await startDovecot({
      idp,
      ...(options.dovecotConfig !== undefined && { extraConfig: options.dovecotConfig }),
    });
    return new World(dir, idp, dovecot, await freePorts(6));
  }

  /** An account section for USER against the test identity provider. */
  accountSection(name = USER): string {
    return [...publicClientAccountLines(this.idp, name), ''].join('\n');
  }

  /** A config with an IMAP (and POP3) listener in front of Dovecot, plus USER's account. */
  config(extra = ''): string {
    return [
      `[IMAP-${this.ports[0]}]`,
      'server_address = localhost',
      `server_port = ${this.dovecot.imapsPort}`,
      `server_ca_file = ${this.dovecot.caFile}`,
      '',
      `[POP-${this.ports[1]}]`,
      'server_address = localhost',
      `server_port = ${this.dovecot.pop3sPort}`,
      `server_ca_file = ${this.dovecot.caFile}`,
      '',
      this.accountSection(),
      extra,
    ].join('\n');
  }

  get imapPort(): number {
    return this.ports[0]!;
  }

  get pop3Port(): number {
    return this.ports[1]!;
  }

  /**
   * Stores tokens for USER as if an earlier authorisation had happened: a real code flow at the
   * identity provider, encrypted with PASSWORD into the proxy's token store.
   */
  async seedTokens(
    options: { expired?: boolean } = {},
  ): Promise<{ accessToken: string; refreshToken: string }> {
    const issued = await this.idp.issueTokensFor(USER, OFFICE365_TEST_SCOPE);
    const expiry = options.expired
      ? Math.floor(Date.now() / 1000) - 60
      : Math.floor(Date.now() / 1000) + issued.expiresIn;
    const fields = await sealTokens(
      {
        accessToken: issued.accessToken,
        accessTokenExpiry: expiry,
        refreshToken: issued.refreshToken,
      },
      PASSWORD,
    );
    await new FileTokenStore(this.tokenStore).write(USER, fields);
    return { accessToken: issued.accessToken, refreshToken: issued.refreshToken };
  }

  /** Copies the token store into `location` (a PostgreSQL URL) with the CLI's `tokens copy`. */
  async copyTokensTo(location: string): Promise<void> {
    await promisify(execFile)(process.execPath, [
      PROXY_BIN,
      'tokens',
      'copy',
      '--from',
      this.tokenStore,
      '--to',
      location,
    ]);
  }

  get tokenStore(): string {
    return join(this.dir, 'tokens.ini');
  }

  startProxy(
    options: { config?: string; args?: string[]; tty?: boolean } = {},
  ): Promise<ProxyProcess> {
    return ProxyProcess.start({
      dir: this.dir,
      config: options.config ?? this.config(),
      ...(options.args && { args: options.args }),
      ...(options.tty !== undefined && { tty: options.tty }),
    });
  }

  /** An `[IMAP-port]` section in front of this world's Dovecot. */
  imapSection(port: number): string {
    return serverSection('IMAP', port, this.dovecot.imapsPort, this.dovecot.caFile);
  }

  /**
   * Starts a proxy with `config` in the folder `name` (created if missing), so that its token store
   * and control socket are its own; it is ready when this resolves and stopped with the world.
   */
  async startProxyIn(name: string, config: string): Promise<ProxyProcess> {
    const dir = join(this.dir, name);
    await mkdir(dir, { recursive: true });
    const proxy = await ProxyProcess.start({ dir, config });
    this.ownProxies.push(proxy);
    await proxy.ready();
    return proxy;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.ownProxies.map((proxy) => proxy.stop()));
    await Promise.allSettled([this.dovecot.stop(), this.idp.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The pieces behind reload and stop that can be checked on their own: the gate that counts
 * connections before login, the plan that matches a reloaded config with the bound ports, the
 * waits a stopping daemon relies on, and the protocol goodbyes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/config/types.js';
import { InFlight } from '../../src/daemon/in-flight.js';
import { planListeners } from '../../src/daemon/listener-plan.js';
import { PreAuthGate } from '../../src/proxy/admission.js';
import { farewell } from '../../src/proxy/farewells.js';
import { FileTokenStore } from '../../src/tokens/stores/file-store.js';

describe('the gate for connections before login', () => {
  it('admits up to the total, then refuses until one is released', () => {
    const gate = new PreAuthGate({ maxPreAuthConnections: 2, maxPreAuthConnectionsPerAddress: 10 });
    const first = gate.admit('127.0.0.1');
    const second = gate.admit('::1');
    expect(first.admitted && second.admitted).toBe(true);
    expect(gate.admit('192.0.2.7')).toEqual({
      admitted: false,
      reason: 'too-many-connections',
      limit: 2,
    });

    if (!first.admitted) throw new Error('unreachable');
    first.release();
    first.release(); // a second release must not free another place
    expect(gate.count).toBe(1);
    expect(gate.admit('192.0.2.7').admitted).toBe(true);
    expect(gate.admit('192.0.2.8').admitted).toBe(false);
  });

  it('limits each non-loopback address, counting IPv4-mapped IPv6 as the IPv4 address', () => {
    const gate = new PreAuthGate({
      maxPreAuthConnections: 100,
      maxPreAuthConnectionsPerAddress: 2,
    });
    expect(gate.admit('192.0.2.7').admitted).toBe(true);
    expect(gate.admit('::ffff:192.0.2.7').admitted).toBe(true);
    expect(gate.admit('192.0.2.7')).toEqual({
      admitted: false,
      reason: 'too-many-from-address',
      limit: 2,
    });
    expect(gate.admit('2001:db8::1').admitted).toBe(true);
    expect(gate.admit('192.0.2.8').admitted).toBe(true);
  });

  it('lets loopback clients share the total only: every local program is 127.0.0.1', () => {
    const gate = new PreAuthGate({
      maxPreAuthConnections: 100,
      maxPreAuthConnectionsPerAddress: 2,
    });
    for (const address of ['127.0.0.1', '127.0.0.1', '127.0.0.1', '::ffff:127.0.0.1', '::1'])
      expect(gate.admit(address).admitted).toBe(true);
    expect(gate.count).toBe(5);
  });

  it('counts sockets whose address is already gone under one key', () => {
    const gate = new PreAuthGate({
      maxPreAuthConnections: 100,
      maxPreAuthConnectionsPerAddress: 1,
    });
    expect(gate.admit(undefined).admitted).toBe(true);
    expect(gate.admit(undefined).admitted).toBe(false);
  });
});

describe('planning the ports of a reloaded config', () => {
  const section = (port: number, changes: Partial<ServerConfig> = {}): ServerConfig => ({
    section: `IMAP-${port}`,
    protocol: 'IMAP',
    localPort: port,
    localAddress: '127.0.0.1',
    serverAddress: 'outlook.office365.com',
    serverPort: 993,
    serverStarttls: false,
    localStarttls: false,
    ...changes,
  });
  const running = (server: ServerConfig) => ({ server });

  it('binds new sections, closes removed ones and keeps the rest, saying which changed', () => {
    const kept = running(section(1993));
    const changed = running(section(1994));
    const removed = running(section(1995));
    const plan = planListeners(
      [kept, changed, removed],
      [section(1993), section(1994, { serverAddress: 'imap.example.com' }), section(2993)],
    );
    expect(plan.bind).toEqual([section(2993)]);
    expect(plan.unbind).toEqual([removed]);
    expect(plan.keep).toEqual([
      { listener: kept, server: section(1993), changed: false },
      {
        listener: changed,
        server: section(1994, { serverAddress: 'imap.example.com' }),
        changed: true,
      },
    ]);
  });

  it('updates a port whose protocol or certificate changed in place, and rebinds one that moved address', () => {
    const imap = running(section(1993));
    const loopback = running(section(1995));
    const plan = planListeners(
      [imap, loopback],
      [
        section(1993, {
          section: 'POP-1993',
          protocol: 'POP',
          localCertificatePath: '/etc/cert.pem',
          localKeyPath: '/etc/key.pem',
        }),
        section(1995, { localAddress: '0.0.0.0' }),
      ],
    );
    expect(plan.keep).toEqual([
      { listener: imap, server: expect.objectContaining({ protocol: 'POP' }), changed: true },
    ]);
    expect(plan.unbind).toEqual([loopback]);
    expect(plan.bind).toEqual([section(1995, { localAddress: '0.0.0.0' })]);
  });
});

describe('what a stopping daemon waits for', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omp-idle-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the token store is idle only once every queued write is on disk, including ones queued meanwhile', async () => {
    const store = new FileTokenStore(join(dir, 'tokens.ini'));
    void store.write('a@example.com', { refresh_token: 'first' });
    const idle = store.idle();
    void store.write('b@example.com', { refresh_token: 'second' });
    await idle;
    const text = await readFile(join(dir, 'tokens.ini'), 'utf8');
    expect(text).toContain('[a@example.com]');
    expect(text).toContain('[b@example.com]');
  });

  it('a failed write does not make idle() fail', async () => {
    const store = new FileTokenStore(join(dir, 'tokens.ini'));
    await expect(store.write('', { refresh_token: 'x' })).rejects.toThrow(/account name/);
    await expect(store.idle()).resolves.toBeUndefined();
  });

  it('logins under way are waited for, except those the stop says cannot write tokens', async () => {
    const inFlight = new InFlight();
    let finishRefresh!: () => void;
    const refreshing = inFlight.track(
      new Promise<void>((resolve) => (finishRefresh = resolve)),
      'a@example.com',
    );
    void inFlight.track(
      new Promise<void>(() => undefined),
      'waiting-for-authorisation@example.com',
    );
    let settled = false;
    const done = inFlight
      .settled((account) => account === 'waiting-for-authorisation@example.com')
      .then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(false);
    finishRefresh();
    await refreshing;
    await done;
    expect(inFlight.size).toBe(1);
  });
});

describe('goodbyes', () => {
  it("use each protocol's temporary failure, so clients retry", () => {
    expect(farewell('IMAP', 'shutting-down', 'mail.test')).toBe(
      '* BYE [UNAVAILABLE] oauth2-mail-proxy is shutting down, try again shortly\r\n',
    );
    expect(farewell('POP', 'too-many-from-address', 'mail.test')).toBe(
      '-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n',
    );
    expect(farewell('SMTP', 'too-many-connections', 'mail.test')).toBe(
      '421 4.7.0 mail.test Too many connections, try again later\r\n',
    );
    expect(farewell('SMTP', 'shutting-down', 'mail.test')).toBe(
      '421 4.3.2 mail.test oauth2-mail-proxy is shutting down, try again shortly\r\n',
    );
  });
});

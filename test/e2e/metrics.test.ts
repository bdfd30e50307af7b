/**
 * The operator's view of an instance (`--metrics-address`): Prometheus metrics that move as real
 * clients log in and tokens are refreshed, in a format `promtool` accepts, and a health check for
 * the load balancer that stays up, saying "degraded", while PostgreSQL is away.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { startPostgres, type Postgres } from '../peers/postgres.js';
import { Conversation } from '../support/conversation.js';
import { loginReply } from '../support/faults/imap-steps.js';
import { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

let world: World;
let proxy: ProxyProcess;
let metricsPort: number;
let seeded: { accessToken: string; refreshToken: string };

beforeAll(async () => {
  world = await World.start();
  // Expired: the first login refreshes, which the refresh counter must show.
  seeded = await world.seedTokens({ expired: true });
  [metricsPort] = (await freePorts(1)) as [number];
  proxy = await world.startProxy({ args: ['--metrics-address', String(metricsPort)] });
  await proxy.ready();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

/** The world's config on listener ports of its own, for a second instance. */
async function configOnFreshPorts(): Promise<string> {
  const [imap, pop] = (await freePorts(2)) as [number, number];
  return world
    .config()
    .replace(`[IMAP-${world.imapPort}]`, `[IMAP-${imap}]`)
    .replace(`[POP-${world.pop3Port}]`, `[POP-${pop}]`);
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, text: await response.text() };
}

/** The value of the sample `name{labels}` in a scrape, or undefined when it is absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, output: stdout + stderr }),
    );
    child.stdin?.end(text);
  });
}

describe('/metrics', () => {
  it('counts logins, refreshes, connections and bytes as clients use the proxy', async () => {
    expect(await loginReply(world.imapPort, USER, PASSWORD)).toMatch(/^a1 OK /);
    expect(await loginReply(world.imapPort, USER, 'not the password')).toMatch(/^a1 NO /);
    const pop = await Conversation.connect(world.pop3Port);
    await pop.expect(/^\+OK/);
    pop.send(`USER ${USER}`);
    await pop.expect(/^\+OK/);
    pop.send(`PASS ${PASSWORD}`);
    await pop.expect(/^\+OK/);

    const { status, text } = await get(metricsPort, '/metrics');
    expect(status).toBe(200);
    const metric = (name: string) => `oauth2_mail_proxy_${name}`;
    expect(sample(text, metric('logins_total'), 'protocol="IMAP",outcome="success"')).toBe(1);
    expect(sample(text, metric('logins_total'), 'protocol="IMAP",outcome="bad-password"')).toBe(1);
    expect(sample(text, metric('logins_total'), 'protocol="POP",outcome="success"')).toBe(1);
    expect(sample(text, metric('token_refreshes_total'), 'outcome="success"')).toBe(1);
    // The POP3 session is still open; the two IMAP ones have ended.
    expect(sample(text, metric('open_connections'), 'protocol="POP"')).toBe(1);
    expect(sample(text, metric('open_connections'), 'protocol="IMAP"')).toBe(0);
    const toImapClients = sample(
      text,
      metric('relayed_bytes_total'),
      'protocol="IMAP",direction="to_client"',
    );
    expect(toImapClients).toBeGreaterThan(100);
    const fromPopClient = sample(
      text,
      metric('relayed_bytes_total'),
      'protocol="POP",direction="from_client"',
    );
    expect(fromPopClient).toBeGreaterThan(0);

    const accessLeft = sample(text, metric('access_token_expiry_seconds'), `account="${USER}"`)!;
    expect(accessLeft).toBeGreaterThan(60);
    expect(accessLeft).toBeLessThanOrEqual(3600);
    const refreshLeft = sample(text, metric('refresh_token_expiry_seconds'), `account="${USER}"`)!;
    expect(refreshLeft).toBeGreaterThan(89 * 86_400);
    expect(sample(text, metric('accounts_awaiting_authorization'))).toBe(0);
    expect(sample(text, metric('token_store_up'))).toBe(1);

    // Bytes of a session still open are counted as it goes, not only when it ends.
    pop.send('STAT');
    await pop.expect(/^\+OK/);
    const later = (await get(metricsPort, '/metrics')).text;
    expect(
      sample(later, metric('relayed_bytes_total'), 'protocol="POP",direction="from_client"'),
    ).toBeGreaterThan(fromPopClient!);
    pop.send('QUIT');
    await pop.expect(/^\+OK/);
  });

  it('is what promtool accepts, with no complaint', async () => {
    const { text } = await get(metricsPort, '/metrics');
    expect(await promtool(text)).toEqual({ code: 0, output: '' });
  });

  it('holds no password and no token', async () => {
    const { text } = await get(metricsPort, '/metrics');
    for (const secret of [PASSWORD, seeded.accessToken, seeded.refreshToken])
      expect(text).not.toContain(secret);
  });

  it('answers 404 elsewhere, and /healthz "ok"', async () => {
    expect((await get(metricsPort, '/')).status).toBe(404);
    expect(await get(metricsPort, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
  });
});

describe('off by default', () => {
  it('opens no port when neither the option nor metrics_address is given', async () => {
    const [port] = (await freePorts(1)) as [number];
    const plain = await world.startProxyIn('plain', await configOnFreshPorts());
    expect(plain.events().some((event) => event.event === 'metrics_listening')).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(false));
      socket.on('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});

describe('/healthz with the token store on PostgreSQL', () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  async function healthUntil(
    port: number,
    pattern: RegExp,
  ): Promise<{ status: number; text: string }> {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      const health = await get(port, '/healthz');
      if (pattern.test(health.text)) return health;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`/healthz never matched ${pattern}`);
  }

  it('stays 200 but says degraded while the database is down, and ok once it is back', async () => {
    const [port] = (await freePorts(1)) as [number];
    const config = await configOnFreshPorts();
    const dir = join(world.dir, 'on-postgres');
    await mkdir(dir);
    const instance = await ProxyProcess.start({
      dir,
      config,
      args: ['--cache-store', pg.url, '--metrics-address', `127.0.0.1:${port}`],
    });
    try {
      await instance.ready();
      expect(await get(port, '/healthz')).toEqual({ status: 200, text: 'ok\n' });

      await pg.halt();
      const degraded = await healthUntil(port, /degraded/);
      expect(degraded.status).toBe(200);
      expect(degraded.text).toMatch(/^ok, degraded: token store unreachable/);
      expect(sample((await get(port, '/metrics')).text, 'oauth2_mail_proxy_token_store_up')).toBe(
        0,
      );

      await pg.resume();
      expect(await healthUntil(port, /^ok\n$/)).toEqual({ status: 200, text: 'ok\n' });
    } finally {
      await instance.stop();
    }
  }, 120_000);
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePorts } from '../peers/free-ports.js';
import { runClient } from '../support/clients.js';
import type { ProxyProcess } from '../support/proxy-process.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * `--local-server-auth`: the browser's redirect lands on the proxy itself (a loopback
 * redirect_uri, as Google's desktop clients use), so nobody copies an address.
 */
let world: World;
let proxy: ProxyProcess;
let redirectPort: number;

beforeAll(async () => {
  world = await World.start();
  redirectPort = (await freePorts(1))[0]!;
  await world.dovecot.deliver(USER, Buffer.from('Subject: hi\r\n\r\nredirected hello\r\n'));
  const account = world
    .accountSection()
    .replace(/redirect_uri = .*/, `redirect_uri = http://127.0.0.1:${redirectPort}/`);
  proxy = await world.startProxy({
    config: world.config().replace(world.accountSection(), account),
    args: ['--local-server-auth', '--authorisation-wait', '20'],
  });
  await proxy.ready();
});
afterAll(async () => {
  await proxy?.stop();
  await world?.stop();
});

it('receives the sign-in redirect itself and completes the waiting login', async () => {
  const waitingLogin = runClient('curl', [
    '-sS',
    '--max-time',
    '40',
    '--user',
    `${USER}:${PASSWORD}`,
    `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
  ]);
  const [, url] = await proxy.waitFor(
    /"event":"authorisation_needed","account":"[^"]+","url":"([^"]+)"/,
  );
  await proxy.waitFor(/"event":"redirect_server_listening"/);

  // The browser signs in and follows the redirect to the proxy's port.
  const redirect = await world.idp.browser(url!);
  expect(redirect.startsWith(`http://127.0.0.1:${redirectPort}/?`)).toBe(true);
  const landing = await fetch(redirect);
  expect(landing.status).toBe(200);
  expect(await landing.text()).toBe(`Authorised ${USER}. You can close this window.\n`);

  expect((await waitingLogin).stdout).toContain('redirected hello');
  // The port is only open while an authorisation is pending.
  await expect(fetch(`http://127.0.0.1:${redirectPort}/`)).rejects.toThrow();
});

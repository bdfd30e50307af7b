import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';
import { PASSWORD, USER, World } from '../support/world.js';

/**
 * The user story of the core issue: a fetchmail user with no token yet starts the proxy in a
 * terminal with --external-auth, follows the printed link, pastes the address the browser ends
 * on, and the waiting login goes through. Later logins and a restart need nothing more.
 */
describe('first authorisation through the terminal paste flow', () => {
  let world: World;

  beforeAll(async () => {
    world = await World.start();
    await world.dovecot.deliver(
      USER,
      Buffer.from('Subject: welcome\r\n\r\nHello through the proxy\r\n'),
    );
  });
  afterAll(async () => {
    await world.stop();
  });

  it('prints the link, takes a messy paste, completes the waiting login, and later logins and restarts need no authorisation', async () => {
    const proxy = await world.startProxy({ tty: true, args: ['--external-auth'] });
    await proxy.ready();

    // The mail client logs in and waits while the user authorises.
    const firstFetch = runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${PASSWORD}`,
      `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
    ]);

    const [, url] = await proxy.waitFor(
      new RegExp(
        `Please visit the following URL to authenticate account ${USER.replace(/\./g, '\\.')}: (\\S+)`,
      ),
    );
    const redirect = await world.idp.browser(url!);
    expect(redirect).toMatch(/^https:\/\/localhost\/?\?code=.*session_state=/);

    // First a mangled paste (cut short before the code), then the real one with copy junk around it.
    proxy.type('https://localhost/?state=nothing-here\r');
    await proxy.waitFor(
      /That did not work: [^\n]*no authorization code[\s\S]*Paste the address again/,
    );
    proxy.type(`  "${redirect}" \r`);
    await proxy.waitFor(new RegExp(`Authorised ${USER.replace(/\./g, '\\.')}`));

    const fetched = await firstFetch;
    expect(fetched.stderr).toBe('');
    expect(fetched.stdout).toContain('Hello through the proxy');

    // The token store holds encrypted tokens only, owner-readable only.
    const store = await readFile(world.tokenStore, 'utf8');
    expect((await stat(world.tokenStore)).mode & 0o777).toBe(0o600);
    expect(store).toMatch(new RegExp(`^\\[${USER.replace(/\./g, '\\.')}\\]$`, 'm'));
    expect(store).toMatch(/^access_token = gAAAAA/m);
    expect(store).toMatch(/^refresh_token = gAAAAA/m);

    // A second login uses the stored token: no request to the identity provider.
    const before = world.idp.tokenRequests.total;
    const second = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${PASSWORD}`,
      `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
    ]);
    expect(second.stdout).toContain('Hello through the proxy');
    expect(world.idp.tokenRequests.total).toBe(before);

    expect(await proxy.stop()).toBe(0);

    // After a restart, without a terminal, the stored tokens still open the mailbox.
    const restarted = await world.startProxy();
    await restarted.ready();
    const third = await runClient('curl', [
      '-sS',
      '--user',
      `${USER}:${PASSWORD}`,
      `imap://127.0.0.1:${world.imapPort}/INBOX;UID=1`,
    ]);
    expect(third.stdout).toContain('Hello through the proxy');
    expect(world.idp.tokenRequests.total).toBe(before);
    expect(restarted.output).not.toContain('Please visit');
    expect(await restarted.stop()).toBe(0);

    for (const output of [proxy.output, restarted.output]) {
      expect(output).not.toContain(PASSWORD);
    }
  });
});

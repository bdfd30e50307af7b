import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { LoginFailure } from '../../src/auth/types.js';
import { requestCredentials } from '../../src/proxy/login.js';
import { DEFAULT_LIMITS, type SessionContext } from '../../src/proxy/session.js';
import { FixedAuthenticator, LogCapture } from '../support/session-harness.js';

/** A session context whose client connects from `remoteAddress` (the decision reads nothing else). */
function contextFrom(remoteAddress: string, plaintextLoginsFromNetwork = false): SessionContext {
  return {
    id: 'test',
    server: {
      section: 'IMAP-1993',
      protocol: 'IMAP',
      localPort: 1993,
      localAddress: '0.0.0.0',
      serverAddress: 'x',
      serverPort: 993,
      serverStarttls: false,
      localStarttls: true,
    },
    client: { remoteAddress } as net.Socket,
    remoteAddress,
    log: new LogCapture().logger,
    auth: new FixedAuthenticator({ 'u@example.com': { password: 'pw', result: 'TOKEN' } }),
    limits: DEFAULT_LIMITS,
    upstream: { host: 'x', port: 993, security: 'implicit' },
    upstreamTls: { connectTimeoutMs: 1000 },
    hostname: 'proxy.test',
    plaintextLoginsFromNetwork,
  };
}

const login = { username: 'u@example.com', password: 'pw' };

describe('passwords in clear text from another machine', () => {
  it('are refused before the authenticator sees them', async () => {
    const context = contextFrom('203.0.113.7');
    const result = await requestCredentials(context, 'IMAP', login, false);
    expect(result).toBeInstanceOf(LoginFailure);
    expect((result as LoginFailure).reason).toBe('encryption-required');
    expect((context.auth as FixedAuthenticator).logins).toEqual([]);
  });

  it('are fine after STARTTLS, from loopback in any spelling, or when the config allows them', async () => {
    expect(await requestCredentials(contextFrom('203.0.113.7'), 'IMAP', login, true)).toMatchObject(
      { accessToken: 'TOKEN' },
    );
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      expect(await requestCredentials(contextFrom(address), 'IMAP', login, false)).toMatchObject({
        accessToken: 'TOKEN',
      });
    }
    expect(
      await requestCredentials(contextFrom('203.0.113.7', true), 'IMAP', login, false),
    ).toMatchObject({ accessToken: 'TOKEN' });
  });
});

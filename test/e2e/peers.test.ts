/**
 * The real test peers work on their own, without the proxy: the identity provider issues,
 * rotates and rejects tokens the way Microsoft does, and Dovecot accepts exactly the right
 * XOAUTH2 logins over IMAPS and POP3S. Every later end-to-end test builds on these facts.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startDovecot } from '../peers/dovecot.js';
import type { Dovecot } from '../peers/dovecot.js';
import {
  DEVICE_CODE_GRANT,
  OFFICE365_TEST_SCOPE,
  TEST_REDIRECT_URI,
  startIdp,
} from '../peers/idp.js';
import type { Idp } from '../peers/idp.js';
import { introspect } from '../peers/introspect.js';
import { openLineSession } from '../peers/line-session.js';
import type { LineSession } from '../peers/line-session.js';

const ALICE = 'alice@example.com';
const MALLORY = 'mallory@example.com';

function xoauth2(user: string, accessToken: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
}

interface TokenReply {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

async function postForm(
  url: string,
  fields: Record<string, string>,
  signal?: AbortSignal,
): Promise<TokenReply> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
    signal: signal ?? null,
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

function json(reply: TokenReply): Record<string, unknown> {
  return JSON.parse(reply.text) as Record<string, unknown>;
}

function refreshWith(idp: Idp, refreshToken: string, signal?: AbortSignal): Promise<TokenReply> {
  return postForm(
    idp.urls.token,
    { grant_type: 'refresh_token', client_id: idp.clientId, refresh_token: refreshToken },
    signal,
  );
}

async function imapsSession(dovecot: Dovecot): Promise<LineSession> {
  const session = await openLineSession({ port: dovecot.imapsPort, caFile: dovecot.caFile });
  expect(await session.readLine()).toMatch(/^\* OK \[CAPABILITY .*AUTH=XOAUTH2.*\] /);
  return session;
}

async function pop3sSession(dovecot: Dovecot): Promise<LineSession> {
  const session = await openLineSession({ port: dovecot.pop3sPort, caFile: dovecot.caFile });
  expect(await session.readLine()).toMatch(/^\+OK /);
  return session;
}

/** The Azure AD error shape: OAuth code, AADSTS-prefixed description, codes, trace and correlation ids. */
function expectAzureError(body: Record<string, unknown>, error: string, code: number): void {
  expect(body).toMatchObject({ error, error_codes: [code] });
  expect(body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
  expect(body.timestamp).toEqual(expect.any(String));
  expect(body.trace_id).toMatch(/^[0-9a-f-]{36}$/);
  expect(body.correlation_id).toMatch(/^[0-9a-f-]{36}$/);
}

describe('test peers without the proxy', () => {
  let idp: Idp;
  let dovecot: Dovecot;

  beforeAll(async () => {
    idp = await startIdp();
    dovecot = await startDovecot({ idp });
  });

  afterAll(async () => {
    await dovecot?.stop();
    await idp?.stop();
  });

  describe('identity provider', () => {
    it('runs the code flow with PKCE like Microsoft: the browser ends on the redirect URI with code, state and session_state', async () => {
      const verifier = randomBytes(32).toString('base64url');
      const state = randomUUID();
      const authorizeUrl = `${idp.urls.authorize}?${new URLSearchParams({
        client_id: idp.clientId,
        response_type: 'code',
        redirect_uri: TEST_REDIRECT_URI,
        scope: OFFICE365_TEST_SCOPE,
        state,
        login_hint: ALICE,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      })}`;

      const redirect = new URL(await idp.browser(authorizeUrl));

      expect(`${redirect.origin}${redirect.pathname}`).toBe('https://localhost/');
      expect(redirect.searchParams.get('state')).toBe(state);
      expect(redirect.searchParams.get('session_state')).toEqual(expect.any(String));
      expect(redirect.searchParams.has('iss')).toBe(false);
      const before = idp.tokenRequests.byGrantType.authorization_code ?? 0;

      const reply = await postForm(idp.urls.token, {
        grant_type: 'authorization_code',
        client_id: idp.clientId,
        code: redirect.searchParams.get('code') ?? '',
        redirect_uri: TEST_REDIRECT_URI,
        code_verifier: verifier,
      });

      expect(reply.status).toBe(200);
      const tokens = json(reply);
      expect(tokens).toMatchObject({
        token_type: 'Bearer',
        expires_in: 3600,
        ext_expires_in: 3600,
      });
      expect(tokens.access_token).toEqual(expect.any(String));
      expect(tokens.refresh_token).toEqual(expect.any(String));
      expect(String(tokens.scope).split(' ')).toContain(
        'https://outlook.office.com/IMAP.AccessAsUser.All',
      );
      expect(await introspect(idp, String(tokens.access_token))).toMatchObject({
        active: true,
        sub: ALICE,
      });
      expect(idp.tokenRequests.byGrantType.authorization_code).toBe(before + 1);
    });

    it('redeems an authorization code only once (AADSTS54005)', async () => {
      const authorizeUrl = `${idp.urls.authorize}?${new URLSearchParams({
        client_id: idp.clientId,
        response_type: 'code',
        redirect_uri: TEST_REDIRECT_URI,
        scope: OFFICE365_TEST_SCOPE,
      })}`;
      const code = new URL(await idp.browser(authorizeUrl)).searchParams.get('code') ?? '';
      const redeem = {
        grant_type: 'authorization_code',
        client_id: idp.clientId,
        code,
        redirect_uri: TEST_REDIRECT_URI,
      };

      expect((await postForm(idp.urls.token, redeem)).status).toBe(200);
      const again = await postForm(idp.urls.token, redeem);

      expect(again.status).toBe(400);
      expectAzureError(json(again), 'invalid_grant', 54005);
    });

    it('redirects errors back like Microsoft, with the AADSTS number in error_description', async () => {
      const authorizeUrl = `${idp.urls.authorize}?${new URLSearchParams({
        client_id: idp.clientId,
        response_type: 'code',
        redirect_uri: TEST_REDIRECT_URI,
        scope: OFFICE365_TEST_SCOPE,
        prompt: 'none',
        state: 'st',
      })}`;

      const redirect = new URL(await idp.browser(authorizeUrl));

      expect(redirect.searchParams.get('error')).toBe('login_required');
      expect(redirect.searchParams.get('error_description')).toMatch(/^AADSTS50058: /);
      expect(redirect.searchParams.get('state')).toBe('st');
      expect(redirect.searchParams.has('iss')).toBe(false);
    });

    it('signs in as the user the browser names, over login_hint', async () => {
      const authorizeUrl = `${idp.urls.authorize}?${new URLSearchParams({
        client_id: idp.clientId,
        response_type: 'code',
        redirect_uri: 'https://login.microsoftonline.com/common/oauth2/nativeclient',
        scope: OFFICE365_TEST_SCOPE,
        login_hint: ALICE,
      })}`;
      const code =
        new URL(await idp.browser(authorizeUrl, 'bob@example.com')).searchParams.get('code') ?? '';

      const reply = await postForm(idp.urls.token, {
        grant_type: 'authorization_code',
        client_id: idp.clientId,
        code,
        redirect_uri: 'https://login.microsoftonline.com/common/oauth2/nativeclient',
      });

      expect(await introspect(idp, String(json(reply).access_token))).toMatchObject({
        sub: 'bob@example.com',
      });
    });

    it('accepts a loopback redirect URI on any port and refuses unregistered ones', async () => {
      const authorize = (redirectUri: string): string =>
        `${idp.urls.authorize}?${new URLSearchParams({
          client_id: idp.clientId,
          response_type: 'code',
          redirect_uri: redirectUri,
          scope: OFFICE365_TEST_SCOPE,
        })}`;

      const loopback = new URL(await idp.browser(authorize('http://127.0.0.1:54321/')));

      expect(loopback.host).toBe('127.0.0.1:54321');
      expect(loopback.searchParams.get('code')).toEqual(expect.any(String));
      await expect(idp.browser(authorize('https://attacker.example/'))).rejects.toThrow(
        /redirect_uri/,
      );
    });

    it('rotates the refresh token on every use, and reuse of an old one revokes the whole grant', async () => {
      const first = await idp.issueTokensFor(ALICE);

      const rotated = await refreshWith(idp, first.refreshToken);
      expect(rotated.status).toBe(200);
      const second = json(rotated);
      expect(second.refresh_token).toEqual(expect.any(String));
      expect(second.refresh_token).not.toBe(first.refreshToken);

      const reused = await refreshWith(idp, first.refreshToken);
      expect(reused.status).toBe(400);
      expectAzureError(json(reused), 'invalid_grant', 70000);

      const afterRevocation = await refreshWith(idp, String(second.refresh_token));
      expectAzureError(json(afterRevocation), 'invalid_grant', 70000);
      expect(await introspect(idp, String(second.access_token))).toEqual({ active: false });
    });

    it('counts token requests by grant type, leaving out its own helpers', async () => {
      const tokens = await idp.issueTokensFor(ALICE);
      idp.resetTokenRequests();

      await refreshWith(idp, tokens.refreshToken);
      await postForm(idp.urls.token, { grant_type: 'password', client_id: idp.clientId });

      expect(idp.tokenRequests).toEqual({
        total: 2,
        byGrantType: { refresh_token: 1, password: 1 },
      });
    });

    describe('injected token-endpoint faults', () => {
      it('invalid_grant: a 400 with an AADSTS70000 body, then back to normal', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('invalid_grant');

        const failed = await refreshWith(idp, tokens.refreshToken);
        expect(failed.status).toBe(400);
        expectAzureError(json(failed), 'invalid_grant', 70000);

        expect((await refreshWith(idp, tokens.refreshToken)).status).toBe(200);
      });

      it('503: temporarily_unavailable with Retry-After, the refresh token untouched', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('503');

        const failed = await refreshWith(idp, tokens.refreshToken);
        expect(failed.status).toBe(503);
        expectAzureError(json(failed), 'temporarily_unavailable', 50000);

        expect((await refreshWith(idp, tokens.refreshToken)).status).toBe(200);
      });

      it('garbage: a 200 whose JSON body is cut off', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('garbage');

        const failed = await refreshWith(idp, tokens.refreshToken);
        expect(failed.status).toBe(200);
        expect(failed.contentType).toMatch(/^application\/json/);
        expect(() => JSON.parse(failed.text)).toThrow(SyntaxError);
      });

      it('html500: an HTML error page with status 500', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('html500');

        const failed = await refreshWith(idp, tokens.refreshToken);
        expect(failed.status).toBe(500);
        expect(failed.contentType).toMatch(/^text\/html/);
        expect(failed.text).toContain('500 - Internal server error.');
      });

      it('timeout: no answer at all, and the next request is served', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('timeout');
        const before = idp.tokenRequests.byGrantType.refresh_token ?? 0;

        await expect(
          refreshWith(idp, tokens.refreshToken, AbortSignal.timeout(300)),
        ).rejects.toThrow(/aborted/i);

        expect((await refreshWith(idp, tokens.refreshToken)).status).toBe(200);
        expect(idp.tokenRequests.byGrantType.refresh_token).toBe(before + 2);
      });

      it('several queued faults fail that many requests in order', async () => {
        const tokens = await idp.issueTokensFor(ALICE);
        idp.failNextToken('503', 2);
        idp.failNextToken('html500');

        const statuses = [];
        for (let i = 0; i < 4; i += 1)
          statuses.push((await refreshWith(idp, tokens.refreshToken)).status);

        expect(statuses).toEqual([503, 503, 500, 200]);
      });
    });

    it('runs the device flow: Microsoft-shaped code response, pending until the user approves', async () => {
      const started = await postForm(idp.urls.devicecode, {
        client_id: idp.clientId,
        scope: OFFICE365_TEST_SCOPE,
      });
      expect(started.status).toBe(200);
      const device = json(started);
      expect(device).toMatchObject({
        verification_uri: idp.urls.deviceLogin,
        expires_in: expect.any(Number),
      });
      expect(device.message).toContain(String(device.user_code));
      expect(device).not.toHaveProperty('interval');
      const poll = (): Promise<TokenReply> =>
        postForm(idp.urls.token, {
          grant_type: DEVICE_CODE_GRANT,
          client_id: idp.clientId,
          device_code: String(device.device_code),
        });

      expectAzureError(json(await poll()), 'authorization_pending', 70016);
      await idp.approveDevice(String(device.user_code), 'carol@example.com');
      const approved = await poll();

      expect(approved.status).toBe(200);
      const tokens = json(approved);
      expect(tokens.refresh_token).toEqual(expect.any(String));
      expect(await introspect(idp, String(tokens.access_token))).toMatchObject({
        active: true,
        sub: 'carol@example.com',
      });
    });

    it('issues client-credentials tokens to the service client, for the configured mailbox', async () => {
      const { clientId, clientSecret } = idp.clients.service;
      const reply = await postForm(idp.urls.token, {
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
        scope: 'https://outlook.office365.com/.default',
      });

      expect(reply.status).toBe(200);
      expect(await introspect(idp, String(json(reply).access_token))).toMatchObject({
        active: true,
        sub: idp.defaultUser,
      });
    });

    it('answers client errors like Azure AD', async () => {
      const unknown = await postForm(idp.urls.token, {
        grant_type: 'refresh_token',
        client_id: 'no-such-client',
        refresh_token: 'x',
      });
      expect(unknown.status).toBe(400);
      expectAzureError(json(unknown), 'unauthorized_client', 700016);

      const { clientId } = idp.clients.service;
      const wrongSecret = await postForm(idp.urls.token, {
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: 'wrong',
      });
      expect(wrongSecret.status).toBe(401);
      expectAzureError(json(wrongSecret), 'invalid_client', 7000215);

      const noSecret = await postForm(idp.urls.token, {
        grant_type: 'client_credentials',
        client_id: clientId,
      });
      expectAzureError(json(noSecret), 'invalid_client', 7000218);
    });

    it('can refuse connections and come back on the same port', async () => {
      const tokens = await idp.issueTokensFor(ALICE);

      await idp.refuse();
      await expect(refreshWith(idp, tokens.refreshToken)).rejects.toThrow(/fetch failed/);
      await idp.resume();

      expect((await refreshWith(idp, tokens.refreshToken)).status).toBe(200);
    });

    it('expires access tokens after the configured lifetime', async () => {
      // Two seconds, not one: expiry is counted in whole seconds, so a one-second token issued
      // late in a second may be over before it can be looked at.
      const shortLived = await startIdp({ accessTokenTtlSeconds: 2 });
      try {
        const tokens = await shortLived.issueTokensFor(ALICE);
        expect(tokens.expiresIn).toBe(2);
        expect(await introspect(shortLived, tokens.accessToken)).toMatchObject({ active: true });

        const deadline = Date.now() + 4000;
        let active = true;
        while (active && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          active = (await introspect(shortLived, tokens.accessToken)).active === true;
        }

        expect(active).toBe(false);
      } finally {
        await shortLived.stop();
      }
    });
  });

  describe('Dovecot', () => {
    it('logs in over IMAPS with XOAUTH2 for the token owner', async () => {
      const tokens = await idp.issueTokensFor(ALICE);
      const imap = await imapsSession(dovecot);

      imap.writeLine(`a AUTHENTICATE XOAUTH2 ${xoauth2(ALICE, tokens.accessToken)}`);

      expect(await imap.readLine()).toMatch(/^a OK \[CAPABILITY .*\] Logged in$/);
      imap.close();
    });

    it('rejects a token for another user with the XOAUTH2 error challenge, then NO [AUTHENTICATIONFAILED]', async () => {
      const tokens = await idp.issueTokensFor(MALLORY);
      const imap = await imapsSession(dovecot);

      imap.writeLine(`a AUTHENTICATE XOAUTH2 ${xoauth2(ALICE, tokens.accessToken)}`);
      const challenge = await imap.readLine();
      expect(challenge).toMatch(/^\+ [A-Za-z0-9+/]+=*$/);
      expect(JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString('utf8'))).toMatchObject({
        status: '401',
        schemes: 'bearer',
      });
      imap.writeLine('');

      expect(await imap.readLine()).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
      expect(dovecot.logText()).toContain(`Username '${ALICE}' did not match '${MALLORY}'`);
      imap.close();
    });

    it('rejects a revoked token', async () => {
      const tokens = await idp.issueTokensFor(ALICE);
      const rotated = await refreshWith(idp, tokens.refreshToken);
      await refreshWith(idp, tokens.refreshToken);
      const imap = await imapsSession(dovecot);

      imap.writeLine(
        `a AUTHENTICATE XOAUTH2 ${xoauth2(ALICE, String(json(rotated).access_token))}`,
      );
      expect(await imap.readLine()).toMatch(/^\+ /);
      imap.writeLine('');

      expect(await imap.readLine()).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
      imap.close();
    });

    it('serves a delivered message byte for byte', async () => {
      const user = `fetch-${randomUUID()}@example.com`;
      const body = Buffer.concat([
        Buffer.from(
          `From: sender@example.com\r\nTo: ${user}\r\nSubject: bytes\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
        Buffer.from(
          randomBytes(3000)
            .toString('base64')
            .replace(/(.{76})/g, '$1\r\n'),
        ),
        Buffer.from('\r\n.leading dot\r\n\u00e9t\u00e9 8-bit\r\n'),
      ]);
      await dovecot.deliver(user, body);
      const tokens = await idp.issueTokensFor(user);
      const imap = await imapsSession(dovecot);
      imap.writeLine(`a AUTHENTICATE XOAUTH2 ${xoauth2(user, tokens.accessToken)}`);
      expect(await imap.readLine()).toMatch(/^a OK /);
      imap.writeLine('b SELECT INBOX');
      expect(await imap.readUntil('b ')).toContain('* 1 EXISTS');

      imap.writeLine('c FETCH 1 BODY.PEEK[]');
      const literalStart = await imap.readLine();
      expect(literalStart).toBe(`* 1 FETCH (BODY[] {${body.length}}`);
      const fetched = await imap.readBytes(body.length);
      expect(await imap.readLine()).toBe(')');
      expect(await imap.readLine()).toMatch(/^c OK /);

      expect(fetched.equals(body)).toBe(true);
      imap.close();
    });

    it('logs in over POP3S with AUTH XOAUTH2, and fails a wrong-user token with the challenge and -ERR [AUTH]', async () => {
      const user = `pop-${randomUUID()}@example.com`;
      const message = Buffer.from(`Subject: pop\r\n\r\nhello\r\n`);
      await dovecot.deliver(user, message);
      const own = await idp.issueTokensFor(user);
      const other = await idp.issueTokensFor(MALLORY);

      const good = await pop3sSession(dovecot);
      good.writeLine(`AUTH XOAUTH2 ${xoauth2(user, own.accessToken)}`);
      expect(await good.readLine()).toMatch(/^\+OK /);
      good.writeLine('STAT');
      expect(await good.readLine()).toBe(`+OK 1 ${message.length}`);
      good.writeLine('QUIT');
      good.close();

      const bad = await pop3sSession(dovecot);
      bad.writeLine(`AUTH XOAUTH2 ${xoauth2(user, other.accessToken)}`);
      const challenge = await bad.readLine();
      expect(JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString('utf8'))).toMatchObject({
        status: '401',
      });
      bad.writeLine('');
      expect(await bad.readLine()).toBe('-ERR [AUTH] Authentication failed.');
      bad.close();
    });

    it('offers XOAUTH2 on the plain IMAP and POP3 ports too', async () => {
      const tokens = await idp.issueTokensFor(ALICE);
      const imap = await openLineSession({ port: dovecot.imapPort });
      expect(await imap.readLine()).toMatch(/AUTH=XOAUTH2/);
      imap.writeLine(`a AUTHENTICATE XOAUTH2 ${xoauth2(ALICE, tokens.accessToken)}`);
      expect(await imap.readLine()).toMatch(/^a OK /);
      imap.close();

      const pop3 = await openLineSession({ port: dovecot.pop3Port });
      expect(await pop3.readLine()).toMatch(/^\+OK /);
      pop3.writeLine(`AUTH XOAUTH2 ${xoauth2(ALICE, tokens.accessToken)}`);
      expect(await pop3.readLine()).toMatch(/^\+OK /);
      pop3.close();
    });

    it('presents a certificate valid for localhost, signed by the test CA', async () => {
      const session = await openLineSession({
        port: dovecot.imapsPort,
        caFile: dovecot.caFile,
        servername: 'localhost',
      });
      expect(await session.readLine()).toMatch(/^\* OK /);
      session.close();
      await expect(
        openLineSession({
          port: dovecot.imapsPort,
          caFile: dovecot.caFile,
          servername: 'example.com',
        }),
      ).rejects.toThrow(/altnames/);
    });

    it('advertises OAUTHBEARER as well when asked to', async () => {
      const both = await startDovecot({ idp, mechanisms: 'xoauth2 oauthbearer' });
      try {
        const imap = await imapsSession(both);
        imap.writeLine('a CAPABILITY');
        const [capability = ''] = await imap.readUntil('a ');
        expect(capability).toMatch(/AUTH=XOAUTH2/);
        expect(capability).toMatch(/AUTH=OAUTHBEARER/);
        imap.close();
      } finally {
        await both.stop();
      }
    });
  });
});

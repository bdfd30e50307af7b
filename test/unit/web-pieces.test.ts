import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAccessSecret, sameSecret } from '../../src/web/access-secret.js';
import { issueFormToken, spendFormToken } from '../../src/web/csrf.js';
import { html, raw } from '../../src/web/html.js';
import { sessionCookie, Sessions } from '../../src/web/sessions.js';
import { parseWebAddress, webPageUrl } from '../../src/web/web-address.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-web-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the access key file', () => {
  it('is made once, owner-only, and kept across restarts', async () => {
    const file = join(dir, 'state', 'web-secret');
    const first = await loadAccessSecret(file);
    expect(first).toMatch(/^[\w-]{43}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadAccessSecret(file)).toBe(first);
  });

  it('is replaced when others could read it', async () => {
    const file = join(dir, 'web-secret');
    await writeFile(file, `${'a'.repeat(43)}\n`, { mode: 0o644 });
    const key = await loadAccessSecret(file);
    expect(key).not.toBe('a'.repeat(43));
    expect((await readFile(file, 'utf8')).trim()).toBe(key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('compares keys of any length', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('ab', 'abc')).toBe(false);
    expect(sameSecret('', 'abc')).toBe(false);
  });
});

describe('sessions and one-time form tokens', () => {
  it('finds a session by its cookie, and a token works once', () => {
    const sessions = new Sessions();
    const session = sessions.create();
    const cookie = sessionCookie(session, false);
    expect(cookie).toBe(`omp_session=${session.id}; Path=/; HttpOnly; SameSite=Strict`);
    expect(sessions.fromCookie(`other=1; ${cookie.split(';')[0]}`)).toBe(session);
    expect(sessions.fromCookie('omp_session=made-up')).toBeUndefined();

    const token = issueFormToken(session);
    expect(spendFormToken(session, undefined)).toBe('missing');
    expect(spendFormToken(session, token)).toBe('ok');
    expect(spendFormToken(session, token)).toBe('used-or-unknown');
    expect(spendFormToken(sessions.create(), issueFormToken(session))).toBe('used-or-unknown');
  });

  it('ends a session, and the cookie that clears it is Secure over TLS', () => {
    const sessions = new Sessions();
    const session = sessions.create();
    sessions.end(session);
    expect(sessions.fromCookie(`omp_session=${session.id}`)).toBeUndefined();
    expect(sessionCookie(undefined, true)).toBe(
      'omp_session=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0',
    );
  });
});

describe('templates', () => {
  it('escape every value unless it is markup of our own', () => {
    const account = '<script>alert("x")</script>@example.com';
    expect(html`<h2>${account}</h2>`.text).toBe(
      '<h2>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;@example.com</h2>',
    );
    expect(html`<a href="${"x' onclick='y"}">${raw('<b>ok</b>')}</a>`.text).toBe(
      '<a href="x&#39; onclick=&#39;y"><b>ok</b></a>',
    );
  });
});

describe('--web-address', () => {
  it('takes a port alone on loopback, or a host and port', () => {
    expect(parseWebAddress('8025')).toEqual({ host: '127.0.0.1', port: 8025 });
    expect(parseWebAddress('0.0.0.0:8443')).toEqual({ host: '0.0.0.0', port: 8443 });
    expect(parseWebAddress('[::1]:8025')).toEqual({ host: '::1', port: 8025 });
    expect(webPageUrl({ host: '::1', port: 8025 })).toBe('http://[::1]:8025/');
    expect(() => parseWebAddress('70000')).toThrow('expected [HOST:]PORT');
    expect(() => parseWebAddress('host:')).toThrow('expected [HOST:]PORT');
  });
});

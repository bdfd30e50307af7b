/**
 * One real XOAUTH2 login per configured upstream, with the same connection and login code the
 * proxy uses, followed by one harmless command: IMAP `NOOP` then `LOGOUT`, POP3 `STAT` then
 * `QUIT`, SMTP `NOOP` then `QUIT`. The command after the login matters: Office 365 can accept
 * the login of a token for another user and drop the session at the next command.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type net from 'node:net';
import type { UpstreamCredentials } from '../auth/types.js';
import type { ServerConfig } from '../config/types.js';
import { loginImapUpstream } from '../proxy/imap/upstream-login.js';
import { loginPop3Upstream } from '../proxy/pop3/upstream-login.js';
import { upstreamTarget } from '../proxy/protocols.js';
import { DEFAULT_LIMITS } from '../proxy/session.js';
import { describeReply } from '../proxy/smtp/reply.js';
import { SmtpUpstream } from '../proxy/smtp/upstream.js';
import { loginSmtpUpstream, type SmtpRefusalCause } from '../proxy/smtp/upstream-login.js';
import {
  connectUpstream,
  describeTarget,
  UpstreamError,
  type UpstreamTlsOptions,
} from '../proxy/upstream.js';
import { UpstreamLines } from '../proxy/upstream-dialogue.js';

/** How one upstream took the account's token. */
export type ProbeOutcome =
  /** Logged in and the harmless command worked; `summary` says what the server answered. */
  | { readonly kind: 'ok'; readonly summary: string }
  /** `server_ca_file` could not be read, so no connection was tried. */
  | { readonly kind: 'ca-file'; readonly problem: string }
  /** Could not connect, TLS failed, the server hung up or stayed silent. */
  | { readonly kind: 'upstream'; readonly error: UpstreamError }
  /** The server refused the token itself. */
  | { readonly kind: 'token-rejected'; readonly reason: string }
  /** Refused for another reason; for SMTP, `cause` says which. */
  | { readonly kind: 'refused'; readonly reason: string; readonly cause?: SmtpRefusalCause }
  /** The login was accepted, but the first command after it failed or ended the session. */
  | { readonly kind: 'dropped'; readonly reason: string };

export interface ProbeOptions {
  readonly credentials: UpstreamCredentials;
  /** Connect timeout, and how long the server may stay silent afterwards. */
  readonly timeoutMs: number;
}

/** Logs in to `server`'s upstream with the token and runs the protocol's harmless command. */
export async function probeUpstream(
  server: ServerConfig,
  options: ProbeOptions,
): Promise<ProbeOutcome> {
  let tls: UpstreamTlsOptions;
  try {
    tls = {
      connectTimeoutMs: options.timeoutMs,
      ...(server.serverCaFile && { extraCa: [await readFile(server.serverCaFile, 'utf8')] }),
    };
  } catch (err) {
    return {
      kind: 'ca-file',
      problem: `cannot read ${server.serverCaFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    };
  }
  try {
    switch (server.protocol) {
      case 'IMAP':
        return await probeImap(server, tls, options);
      case 'POP':
        return await probePop3(server, tls, options);
      case 'SMTP':
        return await probeSmtp(server, tls, options);
    }
  } catch (err) {
    if (err instanceof UpstreamError) return { kind: 'upstream', error: err };
    throw err;
  }
}

async function withLines<T>(
  server: ServerConfig,
  tls: UpstreamTlsOptions,
  work: (lines: UpstreamLines) => Promise<T>,
): Promise<T> {
  const target = upstreamTarget(server);
  const socket: net.Socket = await connectUpstream(target, tls);
  socket.on('error', () => undefined);
  try {
    return await work(
      new UpstreamLines(socket, describeTarget(target), {
        maxLineBytes: DEFAULT_LIMITS.maxLineBytes,
        silenceTimeoutMs: tls.connectTimeoutMs,
      }),
    );
  } finally {
    socket.destroy();
  }
}

async function probeImap(
  server: ServerConfig,
  tls: UpstreamTlsOptions,
  { credentials }: ProbeOptions,
): Promise<ProbeOutcome> {
  return withLines(server, tls, async (lines) => {
    const verdict = await loginImapUpstream(lines, credentials);
    if (verdict.kind !== 'accepted') return verdict;
    let reply: string;
    try {
      reply = await imapCommand(lines, 'D2', 'NOOP');
    } catch (err) {
      if (err instanceof UpstreamError) return { kind: 'dropped', reason: err.message };
      throw err;
    }
    if (!/^OK\b/i.test(reply)) return { kind: 'dropped', reason: `NOOP answered ${reply}` };
    await imapCommand(lines, 'D3', 'LOGOUT').catch(() => undefined);
    return { kind: 'ok', summary: `XOAUTH2 login as ${credentials.user} accepted; NOOP OK` };
  });
}

/** Sends a tagged command; returns the tagged reply without its tag. A `* BYE` ends it as a drop. */
async function imapCommand(lines: UpstreamLines, tag: string, command: string): Promise<string> {
  lines.send(`${tag} ${command}`);
  for (;;) {
    const line = await lines.next();
    if (command !== 'LOGOUT' && /^\* BYE\b/i.test(line))
      throw new UpstreamError(
        'closed',
        lines.target,
        `the server ended the session: ${line.slice(2)}`,
      );
    if (line.startsWith(`${tag} `)) return line.slice(tag.length + 1);
  }
}

async function probePop3(
  server: ServerConfig,
  tls: UpstreamTlsOptions,
  { credentials }: ProbeOptions,
): Promise<ProbeOutcome> {
  return withLines(server, tls, async (lines) => {
    const verdict = await loginPop3Upstream(lines, credentials);
    if (verdict.kind !== 'accepted') return verdict;
    let reply: string;
    try {
      lines.send('STAT');
      reply = await lines.next();
    } catch (err) {
      if (err instanceof UpstreamError) return { kind: 'dropped', reason: err.message };
      throw err;
    }
    const stat = /^\+OK (\d+) (\d+)/i.exec(reply);
    if (!stat) return { kind: 'dropped', reason: `STAT answered ${reply}` };
    lines.send('QUIT');
    await lines.next().catch(() => undefined);
    const messages = Number(stat[1]);
    return {
      kind: 'ok',
      summary: `XOAUTH2 login as ${credentials.user} accepted; STAT: ${messages} message${messages === 1 ? '' : 's'}, ${stat[2]} bytes`,
    };
  });
}

async function probeSmtp(
  server: ServerConfig,
  tls: UpstreamTlsOptions,
  { credentials, timeoutMs }: ProbeOptions,
): Promise<ProbeOutcome> {
  const ourName = hostname();
  const upstream = await SmtpUpstream.open({
    target: upstreamTarget(server),
    tls,
    ourName,
    maxLineBytes: DEFAULT_LIMITS.maxLineBytes,
    replyTimeoutMs: timeoutMs,
  });
  try {
    const ehlo = await upstream.command(`EHLO ${ourName}`);
    if (ehlo.code !== 250)
      return { kind: 'refused', reason: `EHLO answered ${describeReply(ehlo)}`, cause: 'other' };
    const login = await loginSmtpUpstream(upstream, credentials);
    if (login.kind === 'token-rejected') return login;
    if (login.kind === 'refused') {
      const offered = ehlo.lines.find((line) => /^AUTH\b/i.test(line));
      const mechanisms = offered
        ? ` (the server offers ${offered})`
        : ' (the server offers no AUTH at all)';
      return {
        kind: 'refused',
        reason: login.cause === 'other' ? `${login.reason}${mechanisms}` : login.reason,
        cause: login.cause,
      };
    }
    let noop;
    try {
      noop = await upstream.command('NOOP');
    } catch (err) {
      if (err instanceof UpstreamError) return { kind: 'dropped', reason: err.message };
      throw err;
    }
    if (noop.code !== 250)
      return { kind: 'dropped', reason: `NOOP answered ${describeReply(noop)}` };
    return { kind: 'ok', summary: `XOAUTH2 login as ${credentials.user} accepted; NOOP 250` };
  } finally {
    upstream.quit();
  }
}

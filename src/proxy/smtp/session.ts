import tls from 'node:tls';
import type net from 'node:net';
import { LoginFailure, type UpstreamCredentials } from '../../auth/types.js';
import { oneLine } from '../imap/replies.js';
import { LineReader, LineTooLongError } from '../line-reader.js';
import { startLocalTls } from '../local-tls.js';
import type { PlainCredentials } from '../sasl.js';
import type { ProtocolSession, SessionContext, SessionOutcome } from '../session.js';
import { UpstreamError } from '../upstream.js';
import { readClientCredentials } from './auth-exchange.js';
import { loggableVerb, parseSmtpCommand } from './command.js';
import { rewriteEhloReply } from './ehlo.js';
import { formatReply } from './reply.js';
import { loginRefusal, upstreamLoginRefusal, upstreamUnavailable } from './replies.js';
import { SmtpUpstream } from './upstream.js';
import { loginSmtpUpstream } from './upstream-login.js';

const CLOSED: SessionOutcome = { kind: 'closed' };
const CRLF = Buffer.from('\r\n');
/** How long a client that was sent away may take to close before it is cut off. */
const HANG_UP_GRACE_MS = 5_000;

/**
 * Commands of a mail transaction. A client that sends one before `AUTH` means to send without
 * authenticating; the server decides what it may do (a submission server answers `530 5.7.57`).
 */
const TRANSACTION_VERBS: ReadonlySet<string> = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT']);

/**
 * The SMTP conversation up to a successful `AUTH` (RFC 5321, RFC 4954).
 *
 * Unlike IMAP, the upstream connection is opened as the client connects: the client's EHLO
 * needs the server's extensions, and they exist only after the upstream's own STARTTLS.
 *
 *   connect upstream (TLS, or 220 / EHLO / STARTTLS / TLS) ─► 220 greeting, or 421 and close
 *     ─► EHLO name ─► EHLO upstream ─► its extensions with AUTH PLAIN LOGIN (and our STARTTLS)
 *     ─► HELO | NOOP | RSET | STARTTLS ─► (loop)
 *     ─► AUTH PLAIN | LOGIN ─► token ─► upstream AUTH XOAUTH2
 *          ├─ 235 ─► 235 with the server's text; hand both sockets to the splice
 *          └─ 535 / 454 ─► saying why; the client may try again on the same connection
 *     ─► MAIL | RCPT | DATA | BDAT ─► splice unauthenticated: the server answers for itself
 *     ─► QUIT ─► 221
 *
 * The greeting waits until the upstream is ready. Greeting first and connecting meanwhile would
 * overlap only the client's side of the exchange, which is on loopback and costs microseconds,
 * and it would mean saying "220 ready" and then `421` to the EHLO when the server is down.
 */
export const smtpSession: ProtocolSession = async (context) => {
  let upstream: SmtpUpstream;
  try {
    upstream = await SmtpUpstream.open({
      target: context.upstream,
      tls: context.upstreamTls,
      ourName: context.hostname,
      maxLineBytes: context.limits.maxLineBytes,
      replyTimeoutMs: context.limits.idleTimeoutMs,
    });
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    context.log.warn({ event: 'upstream_failed', kind: err.kind }, err.message);
    if (context.client.writable) context.client.write(upstreamUnavailable(err, 'connecting'));
    hangUp(context.client);
    return CLOSED;
  }

  try {
    const outcome = await converse(context, upstream);
    if (outcome.kind === 'closed') upstream.quit();
    return outcome;
  } catch (err) {
    upstream.destroy();
    throw err;
  }
};

async function converse(context: SessionContext, upstream: SmtpUpstream): Promise<SessionOutcome> {
  const { log, limits, hostname } = context;
  let client = context.client;
  let reader = new LineReader(client, limits.maxLineBytes);
  let greeted: 'none' | 'HELO' | 'EHLO' = 'none';

  const send = (text: string): void => {
    if (client.writable) client.write(text);
  };
  const close = (text: string): SessionOutcome => {
    send(text);
    hangUp(client, reader);
    return CLOSED;
  };
  const canStartTls = (): boolean => context.localTls !== undefined && !(client instanceof tls.TLSSocket);

  // The idle clock runs only while we wait for the client, not while it waits for the token or the server.
  const onIdle = (): void => {
    log.info({ event: 'idle_timeout' }, 'client idle before authenticating');
    send(`421 4.4.2 ${hostname} Idle timeout before authentication, closing connection\r\n`);
    const idleClient = client;
    idleClient.end(() => idleClient.destroy());
  };
  const readClientLine = async (): Promise<Buffer | null> => {
    client.setTimeout(limits.idleTimeoutMs, onIdle);
    try {
      return await reader.readRawLine();
    } finally {
      client.setTimeout(0);
    }
  };

  send(`220 ${hostname} ESMTP oauth2-mail-proxy ready\r\n`);
  try {
    for (let commands = 0; ; commands += 1) {
      if (commands >= limits.maxCommands) {
        return close(`421 4.7.0 ${hostname} Too many commands before authentication, closing connection\r\n`);
      }
      const line = await readClientLine();
      if (line === null) return CLOSED;
      const { verb, argument } = parseSmtpCommand(line.toString('utf8'));
      log.debug({ event: 'client_command', verb: loggableVerb(verb) }, 'pre-auth command');

      switch (verb) {
        case 'EHLO':
        case 'HELO': {
          if (argument === undefined) {
            send(`501 5.5.4 Syntax: ${verb} hostname\r\n`);
            break;
          }
          const reply = await upstream.command(`${verb} ${argument}`);
          if (reply.code !== 250) {
            // The server's own refusal (a policy on the name, say) is the client's to read.
            send(formatReply(reply));
            break;
          }
          greeted = verb;
          const ours =
            verb === 'EHLO'
              ? rewriteEhloReply(reply, { hostname, clientName: argument, canStartTls: canStartTls() })
              : { code: 250, lines: [`${hostname} Hello ${argument}`] };
          send(formatReply(ours));
          break;
        }
        case 'AUTH': {
          if (greeted !== 'EHLO') {
            send('503 5.5.1 Send EHLO first\r\n');
            break;
          }
          const [mechanism, initialResponse, ...extra] = (argument ?? '').split(/\s+/);
          if (!mechanism || extra.length > 0) {
            send('501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n');
            break;
          }
          const exchange = await readClientCredentials(mechanism, initialResponse, {
            challenge: (base64) => send(`334 ${base64}\r\n`),
            readResponse: async () => (await readClientLine())?.toString('utf8') ?? null,
          });
          if (exchange.kind === 'closed') return CLOSED;
          if (exchange.kind === 'cancelled') send('501 5.7.0 Authentication cancelled\r\n');
          if (exchange.kind === 'malformed') send(`501 5.5.2 ${exchange.message}\r\n`);
          if (exchange.kind === 'unsupported-mechanism') send('504 5.5.4 Only AUTH PLAIN and AUTH LOGIN are supported here\r\n');
          if (exchange.kind === 'credentials') {
            const outcome = await logIn(exchange.credentials);
            if (outcome) return outcome;
          }
          break;
        }
        case 'STARTTLS': {
          if (client instanceof tls.TLSSocket) {
            send('503 5.5.1 TLS is already active\r\n');
            break;
          }
          if (!canStartTls() || !context.localTls) {
            send('502 5.5.1 STARTTLS is not offered here (configure local_certificate_path, local_key_path and local_starttls)\r\n');
            break;
          }
          if (reader.release().length > 0) return close('554 5.5.1 Data sent after STARTTLS before the TLS handshake\r\n');
          send('220 2.0.0 Ready to start TLS\r\n');
          try {
            client = await startLocalTls(client, context.localTls);
          } catch (err) {
            log.info({ event: 'local_tls_failed', err: (err as Error).message }, 'client TLS handshake failed');
            client.destroy();
            return CLOSED;
          }
          reader = new LineReader(client, limits.maxLineBytes);
          // RFC 3207: everything learnt before the handshake is forgotten, EHLO included.
          greeted = 'none';
          break;
        }
        case 'NOOP':
        case 'RSET':
          // Nothing to reset or keep alive: no transaction starts before the splice.
          send('250 2.0.0 OK\r\n');
          break;
        case 'QUIT':
          return close(`221 2.0.0 ${hostname} Bye\r\n`);
        default:
          if (TRANSACTION_VERBS.has(verb)) return passThroughUnauthenticated(verb, line);
          send('502 5.5.1 Command not available before authentication; authenticate with AUTH PLAIN or AUTH LOGIN first\r\n');
      }
    }
  } catch (err) {
    if (err instanceof LineTooLongError) return close('500 5.5.6 Line too long\r\n');
    if (err instanceof UpstreamError) {
      log.warn({ event: 'upstream_failed', kind: err.kind }, err.message);
      return close(upstreamUnavailable(err, 'session'));
    }
    throw err;
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login. Returns the outcome that
   * ends the session, or undefined when the client was refused and may try again.
   */
  async function logIn({ username, password }: PlainCredentials): Promise<SessionOutcome | undefined> {
    const started = performance.now();
    let credentials: UpstreamCredentials;
    try {
      credentials = await context.auth.login({ username, password, protocol: 'SMTP', connectionId: context.id });
    } catch (err) {
      if (!(err instanceof LoginFailure)) throw err;
      log.info({ event: 'login_refused', user: username, reason: err.reason }, err.message);
      send(loginRefusal(err));
      return undefined;
    }

    const result = await loginSmtpUpstream(upstream, credentials);
    if (result.kind !== 'accepted') {
      // Only a refused token is the token's fault; a disabled SMTP AUTH or a busy server is not.
      if (result.kind === 'token-rejected') context.auth.rejectedUpstream(credentials);
      log.warn({ event: 'upstream_rejected', user: username, account: credentials.account, kind: result.kind }, result.reason);
      send(upstreamLoginRefusal(result, upstream.where, credentials));
      return undefined;
    }

    send(`235 2.7.0 ${oneLine(result.text)}\r\n`);
    log.info(
      { event: 'login', user: username, account: credentials.account, durationMs: Math.round(performance.now() - started) },
      'logged in upstream',
    );
    return handOver(credentials.account, reader.release());
  }

  function passThroughUnauthenticated(verb: string, line: Buffer): SessionOutcome {
    log.info({ event: 'unauthenticated_passthrough', verb }, 'client sends without authenticating; the server answers for itself');
    return handOver('', Buffer.concat([line, CRLF, reader.release()]));
  }

  /** Both sides to the splice, with what each had already sent past the conversation. */
  function handOver(account: string, clientPending: Buffer): SessionOutcome {
    // The client may have gone while the server was answering; a splice would wait for a close already past.
    if (client.destroyed) return CLOSED;
    const { socket, pending } = upstream.handOver();
    return { kind: 'authenticated', client, upstream: socket, clientPending, upstreamPending: pending, account };
  }
}

/**
 * Ends our side and reads (and drops) whatever the client still sends, so that its unread bytes
 * do not turn our close into a reset that could swallow the last reply; a client that never
 * closes is cut off after a grace period.
 */
function hangUp(client: net.Socket, reader?: LineReader): void {
  reader?.release();
  client.resume();
  client.end();
  setTimeout(() => client.destroy(), HANG_UP_GRACE_MS).unref();
}

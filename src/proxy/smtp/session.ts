import { hasControlCharacter } from '../../auth/login-rules.js';
import { LoginFailure } from '../../auth/types.js';
import { LineTooLongError } from '../line-reader.js';
import { recordVerdict, requestCredentials } from '../login.js';
import { PreAuthGate } from '../admission.js';
import { farewell } from '../farewells.js';
import { PreAuthClient } from '../pre-auth-client.js';
import { oneLine } from '../reply-text.js';
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

/**
 * Commands of a mail transaction. A client that sends one before `AUTH` means to send without
 * authenticating; the server decides what it may do (a submission server answers `530 5.7.57`).
 */
const TRANSACTION_VERBS: ReadonlySet<string> = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT']);

/** RFC 5321: a domain is at most 255 octets; an address literal is shorter. */
const MAX_CLIENT_NAME = 255;

/**
 * Whether an EHLO / HELO argument can go upstream and into our reply: present, of a domain's
 * length at most, and without control characters. A bare CR in it would reach the server as a
 * line of its own for some (`EHLO x<CR>MAIL FROM:...`), and would make our 250 line invalid.
 */
function isClientName(argument: string | undefined): argument is string {
  return (
    argument !== undefined &&
    Buffer.byteLength(argument) <= MAX_CLIENT_NAME &&
    !hasControlCharacter(argument)
  );
}

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
  const client = new PreAuthClient(
    context,
    `421 4.4.2 ${context.hostname} Idle timeout before authentication, closing connection\r\n`,
  );
  // Each client before its login holds a connection to the server: bound them, making room by
  // sending away the oldest that has kept us waiting, as the listener's own gate does.
  const slot = UPSTREAM_SLOTS.admit(undefined);
  if (!slot.admitted) return client.hangUp(farewell('SMTP', slot.reason, context.hostname));
  slot.makeRoom(() =>
    client.sendAwayIfDawdling(farewell('SMTP', 'too-many-connections', context.hostname)),
  );
  try {
    return await openAndConverse(context, client);
  } finally {
    slot.release();
  }
};

/**
 * Upstream connections held by SMTP clients that have not logged in, across the proxy: far more
 * than honest clients ever open at once, far fewer than a flood of silent ones would.
 */
export const MAX_SMTP_UPSTREAMS_BEFORE_LOGIN = 100;
const UPSTREAM_SLOTS = new PreAuthGate({
  maxPreAuthConnections: MAX_SMTP_UPSTREAMS_BEFORE_LOGIN,
  maxPreAuthConnectionsPerAddress: MAX_SMTP_UPSTREAMS_BEFORE_LOGIN,
});

async function openAndConverse(
  context: SessionContext,
  client: PreAuthClient,
): Promise<SessionOutcome> {
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
    return client.hangUp(upstreamUnavailable(err, 'connecting'));
  }

  try {
    const outcome = await converse(context, client, upstream);
    if (outcome.kind === 'closed') upstream.quit();
    return outcome;
  } catch (err) {
    upstream.destroy();
    throw err;
  }
}

async function converse(
  context: SessionContext,
  client: PreAuthClient,
  upstream: SmtpUpstream,
): Promise<SessionOutcome> {
  const { log, limits, hostname } = context;
  let greeted: 'none' | 'HELO' | 'EHLO' = 'none';
  const send = (text: string): void => client.send(text);

  send(`220 ${hostname} ESMTP oauth2-mail-proxy ready\r\n`);
  try {
    for (let commands = 0; ; commands += 1) {
      if (commands >= limits.maxCommands) {
        return client.hangUp(
          `421 4.7.0 ${hostname} Too many commands before authentication, closing connection\r\n`,
        );
      }
      const line = await client.readRawLine();
      if (line === null) return CLOSED;
      const { verb, argument } = parseSmtpCommand(line.toString('utf8'));
      log.debug({ event: 'client_command', verb: loggableVerb(verb) }, 'pre-auth command');

      switch (verb) {
        case 'EHLO':
        case 'HELO': {
          if (!isClientName(argument)) {
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
              ? rewriteEhloReply(reply, {
                  hostname,
                  clientName: argument,
                  canStartTls: client.canStartTls,
                })
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
            readResponse: () => client.readLine(),
          });
          if (exchange.kind === 'closed') return CLOSED;
          if (exchange.kind === 'cancelled') send('501 5.7.0 Authentication cancelled\r\n');
          if (exchange.kind === 'malformed') send(`501 5.5.2 ${exchange.message}\r\n`);
          if (exchange.kind === 'unsupported-mechanism')
            send('504 5.5.4 Only AUTH PLAIN and AUTH LOGIN are supported here\r\n');
          if (exchange.kind === 'credentials') {
            const outcome = await logIn(exchange.credentials);
            if (outcome) return outcome;
          }
          break;
        }
        case 'STARTTLS': {
          if (client.secure) {
            send('503 5.5.1 TLS is already active\r\n');
            break;
          }
          if (!client.canStartTls) {
            send(
              '502 5.5.1 STARTTLS is not offered here (configure local_certificate_path, local_key_path and local_starttls)\r\n',
            );
            break;
          }
          const upgrade = await client.startTls('220 2.0.0 Ready to start TLS\r\n');
          if (upgrade === 'data-before-handshake')
            return client.hangUp('554 5.5.1 Data sent after STARTTLS before the TLS handshake\r\n');
          if (upgrade === 'failed') return CLOSED;
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
          return client.hangUp(`221 2.0.0 ${hostname} Bye\r\n`);
        default:
          if (TRANSACTION_VERBS.has(verb)) return passThroughUnauthenticated(verb, line);
          send(
            '502 5.5.1 Command not available before authentication; authenticate with AUTH PLAIN or AUTH LOGIN first\r\n',
          );
      }
    }
  } catch (err) {
    if (err instanceof LineTooLongError) return client.hangUp('500 5.5.6 Line too long\r\n');
    if (err instanceof UpstreamError) {
      log.warn({ event: 'upstream_failed', kind: err.kind }, err.message);
      return client.hangUp(upstreamUnavailable(err, 'session'));
    }
    throw err;
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login on the connection the client's
   * EHLO went over. Returns the outcome that ends the session, or undefined when the client was
   * refused and may try again on the same connection.
   */
  async function logIn(login: PlainCredentials): Promise<SessionOutcome | undefined> {
    const started = performance.now();
    let credentials = await requestCredentials(context, 'SMTP', login, client.secure);
    if (credentials instanceof LoginFailure) {
      send(loginRefusal(credentials));
      return undefined;
    }
    let result = await loginSmtpUpstream(upstream, credentials);
    recordVerdict(context, login.username, credentials, result, started);
    if (result.kind === 'token-rejected') {
      // Distrusted now: asking again refreshes it. One more try on the same connection (RFC 4954
      // allows AUTH again after a 535); a second rejection stands.
      log.info(
        { event: 'upstream_retry', user: login.username, account: credentials.account },
        'retrying the login upstream with a refreshed token',
      );
      const refreshed = await requestCredentials(context, 'SMTP', login, client.secure);
      if (!(refreshed instanceof LoginFailure)) {
        credentials = refreshed;
        result = await loginSmtpUpstream(upstream, credentials);
        recordVerdict(context, login.username, credentials, result, started);
      }
    }
    if (result.kind !== 'accepted') {
      send(upstreamLoginRefusal(result, upstream.where, credentials));
      return undefined;
    }
    send(`235 2.7.0 ${oneLine(result.text)}\r\n`);
    const { socket, pending } = upstream.handOver();
    return client.handOver(socket, pending, credentials.account);
  }

  function passThroughUnauthenticated(verb: string, line: Buffer): SessionOutcome {
    log.info(
      { event: 'unauthenticated_passthrough', verb },
      'client sends without authenticating; the server answers for itself',
    );
    const { socket, pending } = upstream.handOver();
    return client.passThrough(socket, pending, line);
  }
}

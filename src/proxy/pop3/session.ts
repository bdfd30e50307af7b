import tls from 'node:tls';
import type net from 'node:net';
import { LoginFailure, type UpstreamCredentials } from '../../auth/types.js';
import { LineReader, LineTooLongError } from '../line-reader.js';
import { decodePlain, type PlainCredentials } from '../sasl.js';
import type { ProtocolSession, SessionContext, SessionOutcome } from '../session.js';
import { connectUpstream, UpstreamError } from '../upstream.js';
import { loggableVerb, parsePop3Command, TRANSACTION_VERBS } from './command.js';
import { capabilityList, errReply, loginRefusal, mechanismList, okReply } from './replies.js';
import { loginPop3Upstream } from './upstream-login.js';

const LOG_IN_FIRST = 'log in with USER and PASS, or AUTH PLAIN, first';

/**
 * The POP3 conversation up to a successful login (RFC 1939 AUTHORIZATION state, RFC 2449 CAPA,
 * RFC 5034 AUTH, RFC 2595 STLS).
 *
 *   greeting ─► CAPA | STLS | bare AUTH ─► (loop)
 *            ─► USER name, PASS password | AUTH PLAIN ─► token ─► upstream AUTH XOAUTH2
 *                 ├─ +OK  ─► +OK with the server's text; hand both sockets to the splice
 *                 └─ -ERR ─► -ERR [AUTH] / [SYS/TEMP] saying why; the client may try again
 *            ─► QUIT ─► +OK, close
 */
export const pop3Session: ProtocolSession = async (context: SessionContext): Promise<SessionOutcome> => {
  const { log, limits } = context;
  let client = context.client;
  let reader = new LineReader(client, limits.maxLineBytes);
  const send = (text: string): void => {
    if (client.writable) client.write(text);
  };
  const hangUp = (text: string): SessionOutcome => {
    send(errReply(text));
    client.end();
    return { kind: 'closed' };
  };

  // On the plain socket, which sees every byte even under a local STLS; a timer armed on the TLS
  // socket would leave this one running into the spliced session.
  context.client.setTimeout(limits.idleTimeoutMs, () => {
    hangUp('Autologout; idle for too long before logging in');
    client.destroy();
    context.client.destroy();
  });

  /** The next line, or null when the conversation is over (client gone, or sent away). */
  const readLine = async (): Promise<string | null> => {
    try {
      return await reader.readLine();
    } catch (err) {
      if (err instanceof LineTooLongError) {
        hangUp(`Line too long (limit ${err.limit} bytes)`);
        return null;
      }
      // A reset client: the listener already logs socket errors.
      client.destroy();
      return null;
    }
  };

  const canStartTls = (): boolean => context.localTls !== undefined && !(client instanceof tls.TLSSocket);
  send(okReply('oauth2-mail-proxy ready'));

  /** Set by USER; RFC 1939 lets only the very next command be its PASS. */
  let user: string | undefined;

  for (let commands = 0; ; commands += 1) {
    if (commands >= limits.maxCommands) return hangUp('Too many commands before logging in');

    const line = await readLine();
    if (line === null) return { kind: 'closed' };
    const command = parsePop3Command(line);
    const userBeforePass = user;
    user = undefined;
    if (!command) {
      send(errReply('Expected: command [arguments]'));
      continue;
    }
    const { verb, argument } = command;
    // Arguments stay out of the log (passwords, SASL responses); the USER name is what the account
    // is looked up by, not a secret, and ties the attempt to its login line.
    log.debug(
      { event: 'client_command', verb: loggableVerb(verb), ...(verb === 'USER' && argument ? { user: argument.trim() } : {}) },
      'pre-auth command',
    );

    switch (verb) {
      case 'CAPA':
        send(capabilityList(canStartTls()));
        break;
      case 'QUIT':
        send(okReply('oauth2-mail-proxy signing off'));
        client.end();
        return { kind: 'closed' };
      case 'STLS': {
        if (!canStartTls() || !context.localTls) {
          send(
            errReply(
              client instanceof tls.TLSSocket
                ? 'Command not permitted when TLS active'
                : 'STLS is not offered here (configure local_certificate_path and local_key_path)',
            ),
          );
          break;
        }
        if (reader.release().length > 0) return hangUp('Data sent after STLS before the TLS handshake');
        send(okReply('Begin TLS negotiation now'));
        try {
          client = await startLocalTls(client, context.localTls);
        } catch (err) {
          log.info({ event: 'local_tls_failed', err: (err as Error).message }, 'client TLS handshake failed');
          client.destroy();
          return { kind: 'closed' };
        }
        reader = new LineReader(client, limits.maxLineBytes);
        break;
      }
      case 'USER': {
        const name = argument?.trim();
        if (!name) {
          send(errReply('Expected: USER name'));
          break;
        }
        user = name;
        send(okReply('Send the password with PASS'));
        break;
      }
      case 'PASS': {
        if (userBeforePass === undefined) {
          send(errReply('Send USER first, then PASS'));
          break;
        }
        if (!argument) {
          send(errReply('Expected: PASS password'));
          break;
        }
        const outcome = await logIn({ username: userBeforePass, password: argument });
        if (outcome) return outcome;
        break;
      }
      case 'AUTH': {
        if (argument === undefined || argument.trim() === '') {
          send(mechanismList());
          break;
        }
        const [mechanism = '', initial, ...extra] = argument.trim().split(' ');
        if (mechanism.toUpperCase() !== 'PLAIN') {
          send(errReply('Only AUTH PLAIN is supported here (or use USER and PASS)'));
          break;
        }
        if (extra.length > 0) {
          send(errReply('Expected: AUTH PLAIN [initial-response]'));
          break;
        }
        let response = initial;
        if (response === undefined) {
          send('+ \r\n');
          const answer = await readLine();
          if (answer === null) return { kind: 'closed' };
          response = answer.trim();
        }
        if (response === '*') {
          send(errReply('AUTH cancelled'));
          break;
        }
        const credentials = decodePlain(response === '=' ? '' : response);
        if (!credentials) {
          send(errReply('Malformed SASL PLAIN response (expected base64 of NUL user NUL password)'));
          break;
        }
        const outcome = await logIn(credentials);
        if (outcome) return outcome;
        break;
      }
      case 'APOP':
        send(errReply('APOP is not supported here; use USER and PASS, or AUTH PLAIN'));
        break;
      default:
        send(errReply(TRANSACTION_VERBS.has(verb) ? `${verb} is not valid before logging in; ${LOG_IN_FIRST}` : 'Unknown command'));
    }
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login. Returns the outcome that
   * ends the session, or undefined when the client was told `-ERR` and may try again.
   */
  async function logIn({ username, password }: PlainCredentials): Promise<SessionOutcome | undefined> {
    const started = performance.now();
    const target = describeTarget(context);
    // The upstream handshake runs while the token is looked up, so a login costs one of them, not both.
    const upstreamConnection = connectUpstream(context.upstream, context.upstreamTls);
    upstreamConnection.catch(() => undefined);

    let credentials: UpstreamCredentials;
    try {
      credentials = await context.auth.login({ username, password, protocol: 'POP', connectionId: context.id });
    } catch (err) {
      void upstreamConnection.then((socket) => socket.destroy(), () => undefined);
      if (!(err instanceof LoginFailure)) throw err;
      log.info({ event: 'login_refused', user: username, reason: err.reason }, err.message);
      send(loginRefusal(err));
      return undefined;
    }

    let upstream: net.Socket | undefined;
    try {
      upstream = await upstreamConnection;
      const result = await loginPop3Upstream(upstream, credentials, {
        target,
        maxLineBytes: limits.maxLineBytes,
        timeoutMs: context.upstreamTls.connectTimeoutMs,
      });
      if (!result.ok) {
        upstream.destroy();
        if (!result.tokenRejected) {
          log.warn({ event: 'upstream_refused', user: username, account: credentials.account }, result.reason);
          send(errReply(result.reason));
          return undefined;
        }
        context.auth.rejectedUpstream(credentials);
        log.warn({ event: 'upstream_rejected', user: username, account: credentials.account }, result.reason);
        send(
          errReply(
            `[AUTH] ${target} refused the OAuth2 login for ${credentials.user}: ${result.reason.replace(/\.+$/, '')}. ` +
              `If this persists, re-authorise the account: oauth2-mail-proxy authorize ${credentials.account}`,
          ),
        );
        return undefined;
      }
      if (client.destroyed) {
        // Sent away (idle timer) while the login was under way: nobody is left to splice with.
        upstream.destroy();
        return { kind: 'closed' };
      }
      send(okReply(result.text));
      log.info(
        { event: 'login', user: username, account: credentials.account, durationMs: Math.round(performance.now() - started) },
        'logged in upstream',
      );
      context.client.setTimeout(0);
      return {
        kind: 'authenticated',
        client,
        upstream,
        clientPending: reader.release(),
        upstreamPending: result.pending,
        account: credentials.account,
      };
    } catch (err) {
      upstream?.destroy();
      if (!(err instanceof UpstreamError)) throw err;
      log.warn({ event: 'upstream_failed', kind: err.kind }, err.message);
      return hangUp(`[SYS/TEMP] Cannot log in to ${err.message}. Try again later`);
    }
  }
};

function describeTarget(context: SessionContext): string {
  return `${context.upstream.host}:${context.upstream.port}`;
}

function startLocalTls(socket: net.Socket, secureContext: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    secure.once('secure', () => resolve(secure));
    secure.once('error', reject);
  });
}

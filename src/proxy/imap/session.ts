import tls from 'node:tls';
import type net from 'node:net';
import { LoginFailure, type UpstreamCredentials } from '../../auth/types.js';
import { LineReader, LineTooLongError } from '../line-reader.js';
import { decodePlain, type PlainCredentials } from '../sasl.js';
import type { SessionContext, SessionOutcome } from '../session.js';
import { connectUpstream, UpstreamError } from '../upstream.js';
import { astring, ImapSyntaxError, LiteralTooLargeError, readImapCommand, type ImapCommand } from './command-reader.js';
import { loginRefusal, oneLine, preAuthCapabilities } from './replies.js';
import { loginImapUpstream } from './upstream-login.js';

/**
 * The IMAP conversation up to a successful login (RFC 9051 / 3501 "not authenticated" state).
 *
 *   greeting ─► CAPABILITY | NOOP | ID | STARTTLS ─► (loop)
 *            ─► LOGIN user pass | AUTHENTICATE PLAIN ─► token ─► upstream XOAUTH2
 *                 ├─ OK  ─► tagged OK with the server's text; hand both sockets to the splice
 *                 └─ NO  ─► tagged NO saying why; the client may try again
 *            ─► LOGOUT ─► BYE
 */
export async function imapSession(context: SessionContext): Promise<SessionOutcome> {
  const { log, limits } = context;
  let client = context.client;
  let reader = new LineReader(client, limits.maxLineBytes);
  const send = (text: string): void => {
    if (client.writable) client.write(text);
  };
  const bye = (text: string): SessionOutcome => {
    send(`* BYE ${oneLine(text)}\r\n`);
    client.end();
    return { kind: 'closed' };
  };

  client.setTimeout(limits.idleTimeoutMs, () => {
    bye('Autologout; idle for too long before logging in');
    client.destroy();
  });

  const canStartTls = (): boolean => context.localTls !== undefined && !(client instanceof tls.TLSSocket);
  send(`* OK [CAPABILITY ${preAuthCapabilities(canStartTls())}] oauth2-mail-proxy ready\r\n`);

  for (let commands = 0; ; commands += 1) {
    if (commands >= limits.maxCommands) return bye('Too many commands before logging in');

    let command: ImapCommand | null;
    try {
      command = await readImapCommand(reader, {
        maxLiteralBytes: limits.maxCredentialBytes,
        continueLiteral: () => send('+ Ready for literal data\r\n'),
      });
    } catch (err) {
      if (err instanceof LineTooLongError) return bye(`Command line too long (limit ${err.limit} bytes)`);
      if (err instanceof LiteralTooLargeError) {
        if (err.nonSynchronizing) return bye(`Literal too large (limit ${err.limit} bytes)`);
        send(`${err.tag} NO [TOOBIG] Literal too large (limit ${err.limit} bytes)\r\n`);
        continue;
      }
      if (err instanceof ImapSyntaxError) {
        send(`${err.tag ?? '*'} BAD ${err.message}\r\n`);
        continue;
      }
      throw err;
    }
    if (command === null) return { kind: 'closed' };
    const { tag, verb, args } = command;
    log.debug({ event: 'client_command', verb }, 'pre-auth command');

    switch (verb) {
      case 'CAPABILITY':
        send(`* CAPABILITY ${preAuthCapabilities(canStartTls())}\r\n${tag} OK CAPABILITY completed\r\n`);
        break;
      case 'NOOP':
        send(`${tag} OK NOOP completed\r\n`);
        break;
      case 'ID':
        send(`* ID ("name" "oauth2-mail-proxy")\r\n${tag} OK ID completed\r\n`);
        break;
      case 'LOGOUT':
        send(`* BYE Logging out\r\n${tag} OK LOGOUT completed\r\n`);
        client.end();
        return { kind: 'closed' };
      case 'STARTTLS': {
        if (!canStartTls() || !context.localTls) {
          send(`${tag} BAD STARTTLS is not offered here (configure local_certificate_path and local_key_path)\r\n`);
          break;
        }
        if (reader.release().length > 0) return bye('Data sent after STARTTLS before the TLS handshake');
        send(`${tag} OK Begin TLS negotiation now\r\n`);
        client = await startLocalTls(client, context.localTls);
        reader = new LineReader(client, limits.maxLineBytes);
        break;
      }
      case 'LOGIN': {
        const username = astring(args[0]);
        const password = astring(args[1]);
        if (username === undefined || password === undefined || args.length !== 2) {
          send(`${tag} BAD Expected: LOGIN username password\r\n`);
          break;
        }
        const outcome = await logIn(tag, { username, password });
        if (outcome) return outcome;
        break;
      }
      case 'AUTHENTICATE': {
        const mechanism = astring(args[0])?.toUpperCase();
        if (mechanism !== 'PLAIN') {
          send(`${tag} NO [CANNOT] Only AUTHENTICATE PLAIN is supported here (or use LOGIN)\r\n`);
          break;
        }
        let response = astring(args[1]);
        if (response === undefined) {
          send('+ \r\n');
          const line = await reader.readLine();
          if (line === null) return { kind: 'closed' };
          response = line.trim();
        }
        if (response === '*') {
          send(`${tag} BAD AUTHENTICATE cancelled\r\n`);
          break;
        }
        const credentials = decodePlain(response === '=' ? '' : response);
        if (!credentials) {
          send(`${tag} BAD Malformed SASL PLAIN response (expected base64 of NUL user NUL password)\r\n`);
          break;
        }
        const outcome = await logIn(tag, credentials);
        if (outcome) return outcome;
        break;
      }
      default:
        send(`${tag} BAD ${verb} is not valid before logging in; log in with LOGIN or AUTHENTICATE PLAIN first\r\n`);
    }
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login. Returns the outcome that
   * ends the session, or undefined when the client was told NO and may try again.
   */
  async function logIn(tag: string, { username, password }: PlainCredentials): Promise<SessionOutcome | undefined> {
    const started = performance.now();
    // The upstream handshake runs while the token is looked up, so a login costs one of them, not both.
    const upstreamConnection = connectUpstream(context.upstream, context.upstreamTls);
    upstreamConnection.catch(() => undefined);

    let credentials: UpstreamCredentials;
    try {
      credentials = await context.auth.login({ username, password, protocol: 'IMAP', connectionId: context.id });
    } catch (err) {
      void upstreamConnection.then((socket) => socket.destroy(), () => undefined);
      if (!(err instanceof LoginFailure)) throw err;
      log.info({ event: 'login_refused', user: username, reason: err.reason }, err.message);
      send(loginRefusal(tag, err));
      return undefined;
    }

    let upstream: net.Socket | undefined;
    try {
      upstream = await upstreamConnection;
      const result = await loginImapUpstream(upstream, credentials, describeTarget(context), limits.maxLineBytes);
      if (!result.ok) {
        upstream.destroy();
        context.auth.rejectedUpstream(credentials);
        log.warn({ event: 'upstream_rejected', user: username, account: credentials.account }, result.reason);
        send(
          `${tag} NO [AUTHENTICATIONFAILED] ${oneLine(
            `${describeTarget(context)} refused the OAuth2 login for ${credentials.user}: ${result.reason}. ` +
              `If this persists, re-authorise the account: oauth2-mail-proxy authorize ${credentials.account}`,
          )}\r\n`,
        );
        return undefined;
      }
      for (const line of result.untagged) send(`${line}\r\n`);
      send(`${tag} OK ${result.text}\r\n`);
      log.info(
        { event: 'login', user: username, account: credentials.account, durationMs: Math.round(performance.now() - started) },
        'logged in upstream',
      );
      client.setTimeout(0);
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
      return bye(`[UNAVAILABLE] Cannot log in to ${err.message}. Try again later`);
    }
  }
}

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

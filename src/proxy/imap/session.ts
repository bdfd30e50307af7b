import { LineTooLongError } from '../line-reader.js';
import { logInOverNewConnection, mustEncryptFirst } from '../login.js';
import { PreAuthClient } from '../pre-auth-client.js';
import { cannotLogInText } from '../reply-text.js';
import { decodePlain, type PlainCredentials } from '../sasl.js';
import type { ProtocolSession, SessionContext, SessionOutcome } from '../session.js';
import { describeTarget } from '../upstream.js';
import {
  astring,
  ImapSyntaxError,
  LiteralTooLargeError,
  readImapCommand,
  type ImapCommand,
} from './command-reader.js';
import { bye, loginRefusal, preAuthCapabilities, upstreamRefusal } from './replies.js';
import { loginImapUpstream } from './upstream-login.js';

const CLOSED: SessionOutcome = { kind: 'closed' };

/**
 * The IMAP conversation up to a successful login (RFC 9051 / 3501 "not authenticated" state).
 *
 *   greeting ─► CAPABILITY | NOOP | ID | STARTTLS ─► (loop)
 *            ─► LOGIN user pass | AUTHENTICATE PLAIN ─► token ─► upstream XOAUTH2
 *                 ├─ OK  ─► tagged OK with the server's text; hand both sockets to the splice
 *                 ├─ NO  ─► tagged NO saying why; the client may try again
 *                 └─ server unreachable or failing ─► BYE [UNAVAILABLE]
 *            ─► LOGOUT ─► BYE
 */
export const imapSession: ProtocolSession = async (
  context: SessionContext,
): Promise<SessionOutcome> => {
  const { log, limits } = context;
  const client = new PreAuthClient(context, bye('Autologout; idle for too long before logging in'));

  client.send(
    `* OK [CAPABILITY ${preAuthCapabilities(client.canStartTls, mustEncryptFirst(context, client.secure))}] oauth2-mail-proxy ready\r\n`,
  );

  try {
    for (let commands = 0; ; commands += 1) {
      if (commands >= limits.maxCommands)
        return client.hangUp(bye('Too many commands before logging in'));

      let command: ImapCommand | null;
      try {
        command = await client.read((reader) =>
          readImapCommand(reader, {
            maxLiteralBytes: limits.maxCredentialBytes,
            // LOGIN's two credentials as literals, and the line pieces around them.
            maxCommandBytes: limits.maxLineBytes + 2 * limits.maxCredentialBytes,
            continueLiteral: () => client.send('+ Ready for literal data\r\n'),
          }),
        );
      } catch (err) {
        if (err instanceof LineTooLongError)
          return client.hangUp(bye(`Command line too long (limit ${err.limit} bytes)`));
        if (err instanceof LiteralTooLargeError) {
          if (err.nonSynchronizing)
            return client.hangUp(bye(`Literal too large (limit ${err.limit} bytes)`));
          client.send(`${err.tag} NO [TOOBIG] Literal too large (limit ${err.limit} bytes)\r\n`);
          continue;
        }
        if (err instanceof ImapSyntaxError) {
          client.send(`${err.tag ?? '*'} BAD ${err.message}\r\n`);
          continue;
        }
        throw err;
      }
      if (command === null) return CLOSED;
      const { tag, verb, args } = command;
      log.debug({ event: 'client_command', verb }, 'pre-auth command');

      switch (verb) {
        case 'CAPABILITY':
          client.send(
            `* CAPABILITY ${preAuthCapabilities(client.canStartTls, mustEncryptFirst(context, client.secure))}\r\n${tag} OK CAPABILITY completed\r\n`,
          );
          break;
        case 'NOOP':
          client.send(`${tag} OK NOOP completed\r\n`);
          break;
        case 'ID':
          client.send(`* ID ("name" "oauth2-mail-proxy")\r\n${tag} OK ID completed\r\n`);
          break;
        case 'LOGOUT':
          return client.hangUp(`* BYE Logging out\r\n${tag} OK LOGOUT completed\r\n`);
        case 'STARTTLS': {
          if (!client.canStartTls) {
            client.send(
              `${tag} BAD STARTTLS is not offered here (configure local_certificate_path and local_key_path)\r\n`,
            );
            break;
          }
          const upgrade = await client.startTls(`${tag} OK Begin TLS negotiation now\r\n`);
          if (upgrade === 'data-before-handshake')
            return client.hangUp(bye('Data sent after STARTTLS before the TLS handshake'));
          if (upgrade === 'failed') return CLOSED;
          break;
        }
        case 'LOGIN': {
          const username = astring(args[0]);
          const password = astring(args[1]);
          if (username === undefined || password === undefined || args.length !== 2) {
            client.send(`${tag} BAD Expected: LOGIN username password\r\n`);
            break;
          }
          const outcome = await logIn(tag, { username, password });
          if (outcome) return outcome;
          break;
        }
        case 'AUTHENTICATE': {
          const mechanism = astring(args[0])?.toUpperCase();
          if (mechanism !== 'PLAIN') {
            client.send(
              `${tag} NO [CANNOT] Only AUTHENTICATE PLAIN is supported here (or use LOGIN)\r\n`,
            );
            break;
          }
          let response = astring(args[1]);
          if (response === undefined) {
            client.send('+ \r\n');
            const line = await client.readLine();
            if (line === null) return CLOSED;
            response = line.trim();
          }
          if (response === '*') {
            client.send(`${tag} BAD AUTHENTICATE cancelled\r\n`);
            break;
          }
          const credentials = decodePlain(response === '=' ? '' : response);
          if (!credentials) {
            client.send(
              `${tag} BAD Malformed SASL PLAIN response (expected base64 of NUL user NUL password)\r\n`,
            );
            break;
          }
          const outcome = await logIn(tag, credentials);
          if (outcome) return outcome;
          break;
        }
        default:
          client.send(
            `${tag} BAD ${verb} is not valid before logging in; log in with LOGIN or AUTHENTICATE PLAIN first\r\n`,
          );
      }
    }
  } catch (err) {
    // A SASL response line, read outside the command reader.
    if (err instanceof LineTooLongError)
      return client.hangUp(bye(`Line too long (limit ${err.limit} bytes)`));
    throw err;
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login. Returns the outcome that
   * ends the session, or undefined when the client was told NO and may try again.
   */
  async function logIn(tag: string, login: PlainCredentials): Promise<SessionOutcome | undefined> {
    const attempt = await logInOverNewConnection(
      context,
      'IMAP',
      login,
      loginImapUpstream,
      client.secure,
    );
    switch (attempt.kind) {
      case 'refused-locally':
        client.send(loginRefusal(tag, attempt.failure));
        return undefined;
      case 'refused-upstream':
        client.send(
          upstreamRefusal(
            tag,
            attempt.verdict,
            describeTarget(context.upstream),
            attempt.credentials,
          ),
        );
        return undefined;
      case 'upstream-failed':
        return client.hangUp(bye(`[UNAVAILABLE] ${cannotLogInText(attempt.error)}`));
      case 'logged-in':
        for (const line of attempt.verdict.untagged) client.send(`${line}\r\n`);
        client.send(`${tag} OK ${attempt.verdict.text}\r\n`);
        return client.handOver(
          attempt.upstream,
          attempt.upstreamPending,
          attempt.credentials.account,
        );
    }
  }
};

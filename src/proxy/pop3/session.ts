import { LineTooLongError } from '../line-reader.js';
import { logInOverNewConnection } from '../login.js';
import { PreAuthClient } from '../pre-auth-client.js';
import { cannotLogInText } from '../reply-text.js';
import { decodePlain, type PlainCredentials } from '../sasl.js';
import type { ProtocolSession, SessionContext, SessionOutcome } from '../session.js';
import { describeTarget } from '../upstream.js';
import { loggableVerb, parsePop3Command, TRANSACTION_VERBS, userName } from './command.js';
import {
  capabilityList,
  errReply,
  loginRefusal,
  mechanismList,
  okReply,
  TEMPORARY_PREFIX,
  upstreamRefusal,
} from './replies.js';
import { loginPop3Upstream } from './upstream-login.js';

const LOG_IN_FIRST = 'log in with USER and PASS, or AUTH PLAIN, first';
const CLOSED: SessionOutcome = { kind: 'closed' };

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
export const pop3Session: ProtocolSession = async (
  context: SessionContext,
): Promise<SessionOutcome> => {
  const { log, limits } = context;
  const client = new PreAuthClient(
    context,
    errReply('Autologout; idle for too long before logging in'),
  );

  /** The next line, or null when the conversation is over (client gone, or sent away). */
  const readLine = async (): Promise<string | null> => {
    try {
      return await client.readLine();
    } catch (err) {
      if (!(err instanceof LineTooLongError)) throw err;
      client.hangUp(errReply(`Line too long (limit ${err.limit} bytes)`));
      return null;
    }
  };

  client.send(okReply('oauth2-mail-proxy ready'));

  /** Set by USER; RFC 1939 lets only the very next command be its PASS. */
  let user: string | undefined;

  for (let commands = 0; ; commands += 1) {
    if (commands >= limits.maxCommands)
      return client.hangUp(errReply('Too many commands before logging in'));

    const line = await readLine();
    if (line === null) return CLOSED;
    const command = parsePop3Command(line);
    const userBeforePass = user;
    user = undefined;
    if (!command) {
      client.send(errReply('Expected: command [arguments]'));
      continue;
    }
    const { verb, argument } = command;
    // Arguments stay out of the log (passwords, SASL responses); the USER name is what the account
    // is looked up by, not a secret, and ties the attempt to its login line.
    log.debug(
      {
        event: 'client_command',
        verb: loggableVerb(verb),
        ...(verb === 'USER' && userName(argument) ? { user: userName(argument) } : {}),
      },
      'pre-auth command',
    );

    switch (verb) {
      case 'CAPA':
        client.send(capabilityList(client.canStartTls));
        break;
      case 'QUIT':
        return client.hangUp(okReply('oauth2-mail-proxy signing off'));
      case 'STLS': {
        if (!client.canStartTls) {
          client.send(
            errReply(
              client.secure
                ? 'Command not permitted when TLS active'
                : 'STLS is not offered here (configure local_certificate_path and local_key_path)',
            ),
          );
          break;
        }
        const upgrade = await client.startTls(okReply('Begin TLS negotiation now'));
        if (upgrade === 'data-before-handshake')
          return client.hangUp(errReply('Data sent after STLS before the TLS handshake'));
        if (upgrade === 'failed') return CLOSED;
        break;
      }
      case 'USER': {
        const name = userName(argument);
        if (!name) {
          client.send(errReply('Expected: USER name'));
          break;
        }
        user = name;
        client.send(okReply('Send the password with PASS'));
        break;
      }
      case 'PASS': {
        if (userBeforePass === undefined) {
          client.send(errReply('Send USER first, then PASS'));
          break;
        }
        if (!argument) {
          client.send(errReply('Expected: PASS password'));
          break;
        }
        const outcome = await logIn({ username: userBeforePass, password: argument });
        if (outcome) return outcome;
        break;
      }
      case 'AUTH': {
        if (argument === undefined || argument.trim() === '') {
          client.send(mechanismList());
          break;
        }
        const [mechanism = '', initial, ...extra] = argument.trim().split(' ');
        if (mechanism.toUpperCase() !== 'PLAIN') {
          client.send(errReply('Only AUTH PLAIN is supported here (or use USER and PASS)'));
          break;
        }
        if (extra.length > 0) {
          client.send(errReply('Expected: AUTH PLAIN [initial-response]'));
          break;
        }
        let response = initial;
        if (response === undefined) {
          client.send('+ \r\n');
          const answer = await readLine();
          if (answer === null) return CLOSED;
          response = answer.trim();
        }
        if (response === '*') {
          client.send(errReply('AUTH cancelled'));
          break;
        }
        const credentials = decodePlain(response === '=' ? '' : response);
        if (!credentials) {
          client.send(
            errReply('Malformed SASL PLAIN response (expected base64 of NUL user NUL password)'),
          );
          break;
        }
        const outcome = await logIn(credentials);
        if (outcome) return outcome;
        break;
      }
      case 'APOP':
        client.send(errReply('APOP is not supported here; use USER and PASS, or AUTH PLAIN'));
        break;
      default:
        client.send(
          errReply(
            TRANSACTION_VERBS.has(verb)
              ? `${verb} is not valid before logging in; ${LOG_IN_FIRST}`
              : 'Unknown command',
          ),
        );
    }
  }

  /**
   * Turns the client's password login into an upstream XOAUTH2 login. Returns the outcome that
   * ends the session, or undefined when the client was told `-ERR` and may try again.
   */
  async function logIn(login: PlainCredentials): Promise<SessionOutcome | undefined> {
    const attempt = await logInOverNewConnection(
      context,
      'POP',
      login,
      loginPop3Upstream,
      client.secure,
    );
    switch (attempt.kind) {
      case 'refused-locally':
        client.send(loginRefusal(attempt.failure));
        return undefined;
      case 'refused-upstream':
        client.send(
          upstreamRefusal(attempt.verdict, describeTarget(context.upstream), attempt.credentials),
        );
        return undefined;
      case 'upstream-failed':
        return client.hangUp(
          errReply(`[SYS/TEMP] ${TEMPORARY_PREFIX}${cannotLogInText(attempt.error)}`),
        );
      case 'logged-in':
        client.send(okReply(attempt.verdict.text));
        return client.handOver(
          attempt.upstream,
          attempt.upstreamPending,
          attempt.credentials.account,
        );
    }
  }
};

import type net from 'node:net';
import { loginRuleRefusal } from '../auth/login-rules.js';
import { LoginFailure, type UpstreamCredentials } from '../auth/types.js';
import { isLoopbackHost } from '../config/loopback.js';
import type { Protocol } from '../config/types.js';
import type { PlainCredentials } from './sasl.js';
import type { SessionContext } from './session.js';
import { closedWhileIdle, upstreamForLogin, type UpstreamConversation } from './early-upstream.js';
import { UpstreamError } from './upstream.js';
import type { UpstreamLines } from './upstream-dialogue.js';

/**
 * How the upstream took our XOAUTH2 login. Each protocol reads its server's answer into one of
 * these and adds what it needs to phrase the client's reply.
 */
export type UpstreamVerdict =
  | { readonly kind: 'accepted' }
  /** The server refused the token itself (an error challenge, a plain "authentication failed"). */
  | { readonly kind: 'token-rejected'; readonly reason: string }
  /**
   * Refused for another reason (mailbox in use, server trouble, a policy): the token is good and
   * is kept, and the client should hear the server's own words.
   */
  | { readonly kind: 'refused'; readonly reason: string };

/** The protocol's side of the upstream login: greeting, `AUTHENTICATE XOAUTH2` / `AUTH XOAUTH2`, verdict. */
export type XOAuth2Exchange<V extends UpstreamVerdict> = (
  upstream: UpstreamLines,
  credentials: UpstreamCredentials,
) => Promise<V>;

type Accepted<V extends UpstreamVerdict> = Extract<V, { readonly kind: 'accepted' }>;
type Refused<V extends UpstreamVerdict> = Exclude<V, { readonly kind: 'accepted' }>;

/** How a login over a fresh upstream connection ended. */
export type LoginAttempt<V extends UpstreamVerdict> =
  /** The authenticator said no (wrong password, authorisation pending...); no upstream was used. */
  | { readonly kind: 'refused-locally'; readonly failure: LoginFailure }
  /** The upstream could not be reached or failed mid-login; its connection is gone. */
  | { readonly kind: 'upstream-failed'; readonly error: UpstreamError }
  /** The upstream refused; its connection is gone, and a rejected token has been reported. */
  | {
      readonly kind: 'refused-upstream';
      readonly credentials: UpstreamCredentials;
      readonly verdict: Refused<V>;
    }
  /** Logged in: the upstream socket is ready for the splice. */
  | {
      readonly kind: 'logged-in';
      readonly credentials: UpstreamCredentials;
      readonly verdict: Accepted<V>;
      readonly upstream: net.Socket;
      /** Bytes the server sent past its final login reply (normally none). */
      readonly upstreamPending: Buffer;
    };

/**
 * The IMAP and POP3 login: the upstream connection is opened while the authenticator looks up the
 * token, so a login costs one of the two waits, not both; a local refusal drops that spare
 * connection (a login refused before asking opens none). Then the protocol's XOAUTH2 exchange runs with every wait for the server bounded
 * by the connect timeout, and the verdict is acted on (`recordVerdict`).
 */
export async function logInOverNewConnection<V extends UpstreamVerdict>(
  context: SessionContext,
  protocol: Protocol,
  login: PlainCredentials,
  exchange: XOAuth2Exchange<V>,
  secure: boolean,
): Promise<LoginAttempt<V>> {
  const first = await attemptOverNewConnection(context, protocol, login, exchange, secure);
  if (first.kind !== 'refused-upstream' || first.verdict.kind !== 'token-rejected') return first;
  // The rejected token is distrusted now, so asking again refreshes it: one more try within this
  // login spares the client a failure the proxy can mend. Only one: a second rejection stands.
  context.log.info(
    { event: 'upstream_retry', user: login.username, account: first.credentials.account },
    'retrying the login upstream with a refreshed token',
  );
  const second = await attemptOverNewConnection(context, protocol, login, exchange, secure);
  return second.kind === 'refused-locally' ? first : second;
}

async function attemptOverNewConnection<V extends UpstreamVerdict>(
  context: SessionContext,
  protocol: Protocol,
  login: PlainCredentials,
  exchange: XOAuth2Exchange<V>,
  secure: boolean,
): Promise<LoginAttempt<V>> {
  const started = performance.now();
  const refusal = refuseBeforeAsking(context, login, secure);
  if (refusal) return { kind: 'refused-locally', failure: refusal };
  // Usually opened as the client connected (`early-upstream.ts`); otherwise opened once the
  // authenticator lets the attempt through, while it looks up the token.
  let connection: Promise<UpstreamConversation> | undefined;
  const connect = (): Promise<UpstreamConversation> => {
    if (connection === undefined) {
      connection = upstreamForLogin(context.earlyUpstream, context);
      connection.catch(() => undefined);
    }
    return connection;
  };
  const dropConnection = (): void =>
    void connection?.then(
      ({ socket }) => socket.destroy(),
      () => undefined,
    );

  let credentials: UpstreamCredentials | LoginFailure;
  try {
    credentials = await askAuthenticator(context, protocol, login, () => void connect());
  } catch (err) {
    dropConnection();
    throw err;
  }
  if (credentials instanceof LoginFailure) {
    dropConnection();
    return { kind: 'refused-locally', failure: credentials };
  }

  let socket: net.Socket | undefined;
  try {
    let conversation = await connect();
    socket = conversation.socket;
    let verdict: V;
    try {
      verdict = await exchange(conversation.lines, credentials);
    } catch (err) {
      if (!closedWhileIdle(conversation, err)) throw err;
      socket.destroy();
      conversation = await upstreamForLogin(undefined, context);
      socket = conversation.socket;
      verdict = await exchange(conversation.lines, credentials);
    }
    const upstreamPending = conversation.lines.release();
    recordVerdict(context, login.username, credentials, verdict, started);
    if (isAccepted(verdict))
      return { kind: 'logged-in', credentials, verdict, upstream: socket, upstreamPending };
    socket.destroy();
    // A failed type guard does not narrow a type parameter; `isAccepted` said it is not accepted.
    return { kind: 'refused-upstream', credentials, verdict: verdict as Refused<V> };
  } catch (err) {
    socket?.destroy();
    if (!(err instanceof UpstreamError)) throw err;
    context.log.warn({ event: 'upstream_failed', kind: err.kind }, err.message);
    return { kind: 'upstream-failed', error: err };
  }
}

/**
 * Asks the authenticator for upstream credentials, unless the login is refused before asking.
 * A refusal is logged and returned for the protocol to phrase; anything else is a bug and is
 * thrown. `secure` says whether the client's connection is encrypted.
 */
export async function requestCredentials(
  context: SessionContext,
  protocol: Protocol,
  login: PlainCredentials,
  secure: boolean,
  /** Called when the authenticator lets the attempt through (`LoginRequest.admitted`). */
  admitted?: () => void,
): Promise<UpstreamCredentials | LoginFailure> {
  return (
    refuseBeforeAsking(context, login, secure) ??
    askAuthenticator(context, protocol, login, admitted)
  );
}

/**
 * The one gate every login passes, whatever its protocol and SASL mechanism, before anyone is
 * asked about it: the login rules (`loginRuleRefusal`: no empty or control-character names, no
 * empty password), then no password in clear text from another machine. A broken name is not
 * logged: it may hold the client's password.
 */
function refuseBeforeAsking(
  context: SessionContext,
  login: PlainCredentials,
  secure: boolean,
): LoginFailure | undefined {
  const broken = loginRuleRefusal(login);
  if (broken) {
    context.log.info({ event: 'login_refused', reason: broken.reason }, broken.message);
    return broken;
  }
  if (mustEncryptFirst(context, secure)) {
    context.log.warn(
      {
        event: 'login_refused',
        user: login.username,
        reason: 'encryption-required',
      },
      'password sent without TLS from another machine',
    );
    return new LoginFailure(
      'encryption-required',
      'Passwords are not accepted in clear text from another machine: use STARTTLS (or the TLS port) first, and change this password if the network is not trusted',
    );
  }
  return undefined;
}

async function askAuthenticator(
  context: SessionContext,
  protocol: Protocol,
  { username, password }: PlainCredentials,
  admitted?: () => void,
): Promise<UpstreamCredentials | LoginFailure> {
  try {
    return await context.auth.login({
      username,
      password,
      protocol,
      connectionId: context.id,
      ...(admitted && { admitted }),
      ...(context.remoteAddress !== undefined && {
        remoteAddress: context.remoteAddress,
      }),
    });
  } catch (err) {
    if (!(err instanceof LoginFailure)) throw err;
    context.log.info({ event: 'login_refused', user: username, reason: err.reason }, err.message);
    return err;
  }
}

/**
 * Acts on the upstream's verdict the same way in every protocol: a token the server refused is
 * reported so the next login does not reuse it, and every outcome is logged (never the token).
 * `started` is the `performance.now()` at which the login began.
 */
export function recordVerdict(
  context: SessionContext,
  username: string,
  credentials: UpstreamCredentials,
  verdict: UpstreamVerdict,
  started: number,
): void {
  const who = { user: username, account: credentials.account };
  switch (verdict.kind) {
    case 'accepted':
      context.log.info(
        { event: 'login', ...who, durationMs: Math.round(performance.now() - started) },
        'logged in upstream',
      );
      return;
    case 'token-rejected':
      context.auth.rejectedUpstream(credentials);
      context.log.warn({ event: 'upstream_rejected', ...who }, verdict.reason);
      return;
    case 'refused':
      context.log.warn({ event: 'upstream_refused', ...who }, verdict.reason);
  }
}

/** True when this client may not send a password until the connection is encrypted. */
export function mustEncryptFirst(context: SessionContext, secure: boolean): boolean {
  return (
    !secure && !context.plaintextLoginsFromNetwork && !isLoopbackHost(context.remoteAddress ?? '')
  );
}

function isAccepted<V extends UpstreamVerdict>(verdict: V): verdict is Accepted<V> {
  return verdict.kind === 'accepted';
}

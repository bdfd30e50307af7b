import type net from 'node:net';
import { LoginFailure, type UpstreamCredentials } from '../auth/types.js';
import { isLoopbackHost } from '../config/loopback.js';
import type { Protocol } from '../config/types.js';
import type { PlainCredentials } from './sasl.js';
import type { SessionContext } from './session.js';
import { upstreamForLogin } from './early-upstream.js';
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
 * connection. Then the protocol's XOAUTH2 exchange runs with every wait for the server bounded
 * by the connect timeout, and the verdict is acted on (`recordVerdict`).
 */
export async function logInOverNewConnection<V extends UpstreamVerdict>(
  context: SessionContext,
  protocol: Protocol,
  login: PlainCredentials,
  exchange: XOAuth2Exchange<V>,
  secure: boolean,
): Promise<LoginAttempt<V>> {
  const started = performance.now();
  // Usually opened as the client connected (`early-upstream.ts`), and ready by now.
  const connection = upstreamForLogin(context.earlyUpstream, context);
  connection.catch(() => undefined);
  const dropConnection = (): void =>
    void connection.then(
      ({ socket }) => socket.destroy(),
      () => undefined,
    );

  let credentials: UpstreamCredentials | LoginFailure;
  try {
    credentials = await requestCredentials(context, protocol, login, secure);
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
    let upstream: UpstreamLines;
    ({ socket, lines: upstream } = await connection);
    const verdict = await exchange(upstream, credentials);
    const upstreamPending = upstream.release();
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
 * Asks the authenticator for upstream credentials. A refusal is logged and returned for the
 * protocol to phrase; anything else is a bug and is thrown. `secure` says whether the client's
 * connection is encrypted: a password in clear text from another machine is refused unasked.
 */
export async function requestCredentials(
  context: SessionContext,
  protocol: Protocol,
  { username, password }: PlainCredentials,
  secure: boolean,
): Promise<UpstreamCredentials | LoginFailure> {
  if (mustEncryptFirst(context, secure)) {
    context.log.warn(
      {
        event: 'login_refused',
        user: username,
        reason: 'encryption-required',
        remote: context.client.remoteAddress,
      },
      'password sent without TLS from another machine',
    );
    return new LoginFailure(
      'encryption-required',
      'Passwords are not accepted in clear text from another machine: use STARTTLS (or the TLS port) first, and change this password if the network is not trusted',
    );
  }
  try {
    return await context.auth.login({
      username,
      password,
      protocol,
      connectionId: context.id,
      ...(context.client.remoteAddress !== undefined && {
        remoteAddress: context.client.remoteAddress,
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
    !secure &&
    !context.plaintextLoginsFromNetwork &&
    !isLoopbackHost(context.client.remoteAddress ?? '')
  );
}

function isAccepted<V extends UpstreamVerdict>(verdict: V): verdict is Accepted<V> {
  return verdict.kind === 'accepted';
}

import http from 'node:http';
import type { Logger } from 'pino';
import { OAuthError } from '../oauth/index.js';
import type { PendingView } from '../tokens/pending-authorizations.js';
import type { TokenManager } from '../tokens/token-manager.js';

/**
 * `--local-server-auth`: for users whose browser can reach the proxy's machine, a small HTTP
 * listener receives the provider's redirect itself, so nobody has to copy an address. It listens
 * on `redirect_listen_address` (email-oauth2-proxy's key) or else the `redirect_uri` itself when
 * that is a plain-http address, only while that account's authorisation is pending.
 */
export function startRedirectServers(tokens: TokenManager, log: Logger): () => void {
  const servers = new Map<string, http.Server>();

  /** Stops listening; a browser still being answered gets its page first unless `now`. */
  const close = (key: string, now = false): void => {
    const server = servers.get(key);
    servers.delete(key);
    server?.close();
    if (now) server?.closeAllConnections();
    else server?.closeIdleConnections();
  };

  const onPending = (pending: PendingView): void => {
    if (pending.flow !== 'authorization_code' || servers.has(pending.key)) return;
    const address = listenAddress(tokens, pending.key);
    if (!address) {
      log.info(
        { event: 'redirect_server_skipped', account: pending.key },
        'no plain-http redirect address to listen on; paste the address instead',
      );
      return;
    }
    const server = http.createServer(
      (request, response) => void answer(request, response, pending.key, address),
    );
    server.on('error', (err) =>
      log.warn(
        { event: 'redirect_server_failed', account: pending.key, err: err.message },
        `cannot listen on ${address.href}`,
      ),
    );
    server.listen(Number(address.port || 80), address.hostname.replace(/^\[(.*)\]$/, '$1'), () =>
      log.info(
        { event: 'redirect_server_listening', account: pending.key, address: address.origin },
        `waiting for the sign-in redirect on ${address.origin}`,
      ),
    );
    servers.set(pending.key, server);
  };

  const answer = async (
    request: http.IncomingMessage,
    response: http.ServerResponse,
    key: string,
    address: URL,
  ): Promise<void> => {
    const received = new URL(request.url ?? '/', address.origin);
    if (!received.searchParams.has('code') && !received.searchParams.has('error')) {
      response
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('oauth2-mail-proxy: waiting for the sign-in redirect\n');
      return;
    }
    try {
      await tokens.pending.complete(key, received.href);
      response
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end(`Authorised ${key}. You can close this window.\n`);
    } catch (err) {
      const message =
        err instanceof OAuthError ? `${err.message}. ${err.hint}` : (err as Error).message;
      response
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`oauth2-mail-proxy could not use this sign-in: ${message}\n`);
    }
  };

  const onDone = ({ subject }: { subject: { key: string } }): void => close(subject.key);
  const onFailed = ({ key }: { key: string }): void => close(key);
  tokens.pending.on('pending', onPending);
  tokens.pending.on('completed', onDone);
  tokens.pending.on('failed', onFailed);
  return () => {
    tokens.pending.off('pending', onPending);
    tokens.pending.off('completed', onDone);
    tokens.pending.off('failed', onFailed);
    for (const key of [...servers.keys()]) close(key, true);
  };
}

function listenAddress(tokens: TokenManager, key: string): URL | undefined {
  const account = tokens.pending.subject(key)?.account;
  if (!account) return undefined;
  const candidate = account.redirectListenAddress ?? account.redirectUri;
  try {
    const url = new URL(candidate);
    return url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

import { readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { LoginThrottle } from '../auth/login-throttle.js';
import { isLoopbackHost } from '../config/loopback.js';
import { loadAccessSecret } from './access-secret.js';
import { ChangeFeed } from './change-feed.js';
import type { DaemonPort } from './daemon-port.js';
import { hostAllowed, KEY_PARAMETER, webRoutes } from './routes.js';
import { Sessions } from './sessions.js';
import { hostAndPort, webPageUrl, type WebAddress } from './web-address.js';

export interface WebServerOptions {
  readonly address: WebAddress;
  readonly port: DaemonPort;
  /** The access key's file (created 0600 when missing). */
  readonly secretFile: string;
  /** Where the page's address is left for `oauth2-mail-proxy web-url` while the daemon runs. */
  readonly urlFile: string;
  readonly log: Logger;
}

export interface WebServer {
  /** The page's address, without the access key (safe for notifications and mail clients' replies). */
  readonly url: string;
  close(): Promise<void>;
}

/** The page cannot start: a network address without TLS, or an unreadable certificate. */
export class WebConfigError extends Error {}

/** The page's port cannot be bound. */
export class WebListenError extends Error {}

/**
 * Serves the authorisation page. Loopback needs nothing more; any other address needs the page's
 * own certificate, because the access key, the session cookie and the mail password typed into the
 * page would otherwise cross the network in clear text.
 */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const { address, log } = options;
  checkWebAddress(address);
  const tlsOptions = address.tls && (await readTls(address.tls));
  const secret = await loadAccessSecret(options.secretFile);

  const sessions = new Sessions();
  const handler = webRoutes({
    port: options.port,
    feed: new ChangeFeed(options.port),
    sessions,
    throttle: new LoginThrottle(),
    secret,
    secure: address.tls !== undefined,
    hostAllowed: hostAllowed(address.tls !== undefined),
    machine: hostname(),
    log,
  });
  const server = tlsOptions
    ? https.createServer({ ...tlsOptions, minVersion: 'TLSv1.2' }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new WebListenError(
          `cannot listen on ${hostAndPort(address)} for the web page: ${err.code ?? err.message}`,
        ),
      ),
    );
    server.listen(address.port, address.host, () => {
      server.removeAllListeners('error');
      server.on('error', (err) =>
        log.warn({ event: 'web_error', err: err.message }, 'web page error'),
      );
      resolve();
    });
  });

  const url = webPageUrl(address);
  await writeFile(options.urlFile, `${url}\n`, { mode: 0o600 });
  // Like a notebook server: the owner reads the address with its key in the log (or `web-url`).
  log.info(
    { event: 'web_listening', address: url },
    `authorisation page: ${url}?${KEY_PARAMETER}=${secret}`,
  );
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(options.urlFile, { force: true });
    },
  };
}

/**
 * Refuses a network address without TLS, before the daemon binds anything.
 *
 * @throws WebConfigError
 */
export function checkWebAddress(address: WebAddress): void {
  if (!isLoopbackHost(address.host) && !address.tls)
    throw new WebConfigError(
      `--web-address ${hostAndPort(address)} is not a loopback address: give the page a certificate (--web-certificate, --web-key) or listen on 127.0.0.1`,
    );
}

async function readTls(files: {
  certificate: string;
  key: string;
}): Promise<{ cert: string; key: string }> {
  try {
    const [cert, key] = await Promise.all([
      readFile(files.certificate, 'utf8'),
      readFile(files.key, 'utf8'),
    ]);
    return { cert, key };
  } catch (err) {
    throw new WebConfigError(
      `cannot read the web page's certificate or key: ${(err as Error).message}`,
    );
  }
}

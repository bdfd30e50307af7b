/**
 * The optional HTTP endpoint for a fleet's operators (`--metrics-address`): `/metrics` for
 * Prometheus and `/healthz` for a load balancer. Read-only, no request bodies, no secrets: it
 * listens on loopback unless told otherwise, and says at start that it has no authentication.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isLoopbackHost } from '../config/loopback.js';
import type { Metrics } from './metrics.js';

export interface Health {
  /** 503 with `problem` while false (the proxy is stopping: take it out of the pool). */
  readonly serving: boolean;
  readonly problem?: string | undefined;
  /** Still serving, but the balancer's operator should know (the token store is unreachable). */
  readonly degraded?: string | undefined;
}

export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  readonly health: () => Health;
  readonly log: Logger;
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { metrics, log } = options;
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const health = options.health();
      const body = health.serving
        ? health.degraded === undefined
          ? 'ok\n'
          : `ok, degraded: ${health.degraded}\n`
        : `unavailable: ${health.problem ?? 'not serving'}\n`;
      response
        .writeHead(health.serving ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' })
        .end(body);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) =>
          response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: unknown) => {
          log.error({ event: 'metrics_failed', err }, 'collecting metrics failed');
          response.writeHead(500).end();
        },
      );
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  });
  // A scraper that never finishes its request holds a socket, nothing more.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}/`;
  if (!isLoopbackHost(options.host))
    log.warn(
      { event: 'startup_warning' },
      `the metrics endpoint ${url} is reachable from other machines and has no authentication: ` +
        'it names accounts; limit who can reach it with a firewall',
    );
  log.info(
    { event: 'metrics_listening', url },
    `metrics and health at ${url}metrics and ${url}healthz`,
  );
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

import { InvalidArgumentError } from 'commander';
import { parseHostPort } from '../config/host-port.js';

/** Where the authorisation page listens, and its certificate when it is served with TLS. */
export interface WebAddress {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly certificate: string; readonly key: string };
}

/** `--web-address [HOST:]PORT`; the host defaults to 127.0.0.1 (loopback, like every listener). */
export function parseWebAddress(text: string): { host: string; port: number } {
  const address = parseHostPort(text);
  if (address === undefined)
    throw new InvalidArgumentError('expected [HOST:]PORT, e.g. 127.0.0.1:8025 or 8025');
  return address;
}

/** `HOST:PORT` as it appears in a URL (an IPv6 address in brackets). */
export function hostAndPort(web: { host: string; port: number }): string {
  return `${web.host.includes(':') ? `[${web.host}]` : web.host}:${web.port}`;
}

/** The page's address, without its access key. */
export function webPageUrl(web: WebAddress): string {
  return `${web.tls ? 'https' : 'http'}://${hostAndPort(web)}/`;
}

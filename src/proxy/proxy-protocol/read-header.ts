import type net from 'node:net';
import { parseProxyHeader, type ProxyHeader } from './parse.js';

export type HeaderReading =
  | { readonly ok: true; readonly header: ProxyHeader }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads the PROXY header a trusted balancer must send first, leaving the client's own bytes
 * unread on `socket` (put back, paused) for the TLS handshake or the protocol session. Nothing
 * is sent before: the protocols' greetings wait until the header is in.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<HeaderReading> {
  return new Promise((resolve) => {
    let received: Buffer = Buffer.alloc(0);
    const finish = (reading: HeaderReading, rest?: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (rest !== undefined && rest.length > 0) socket.unshift(rest);
      resolve(reading);
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const parse = parseProxyHeader(received);
      if (parse.status === 'incomplete') return;
      if (parse.status === 'invalid') return finish({ ok: false, reason: parse.reason });
      finish({ ok: true, header: parse.header }, received.subarray(parse.length));
    };
    const onClose = (): void =>
      finish({ ok: false, reason: 'the connection closed before its PROXY header' });
    const timer = setTimeout(
      () => finish({ ok: false, reason: `no PROXY header within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

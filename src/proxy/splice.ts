import type net from 'node:net';

/**
 * After authentication the proxy is a pipe: bytes go both ways untouched, with the streams'
 * own backpressure, no parsing and no per-chunk work of ours. Resolves when both sides are closed.
 *
 * `clientPending` / `upstreamPending` are bytes the login conversation had already read but not
 * used (a pipelining client's next commands, a server's first untagged data); they go first.
 */
export function splice(
  client: net.Socket,
  upstream: net.Socket,
  clientPending: Buffer = Buffer.alloc(0),
  upstreamPending: Buffer = Buffer.alloc(0),
): Promise<void> {
  if (clientPending.length > 0) upstream.write(clientPending);
  if (upstreamPending.length > 0) client.write(upstreamPending);

  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
  upstream.resume();

  return new Promise((resolve) => {
    let open = 2;
    const closed = (): void => {
      open -= 1;
      if (open === 0) resolve();
    };
    // A clean close lets the other side finish writing what it has; a reset must not leave it
    // hanging open.
    client.once('close', (hadError: boolean) => {
      if (hadError) upstream.destroy();
      else upstream.end();
      closed();
    });
    upstream.once('close', (hadError: boolean) => {
      if (hadError) client.destroy();
      else client.end();
      closed();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
}

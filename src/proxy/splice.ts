import type net from 'node:net';
import tls from 'node:tls';

/**
 * Bytes a destination may hold unsent before its source is paused. Above the sockets' 16 KiB
 * high-water mark so that a turn's worth of TLS records fits in one write.
 */
const MAX_UNSENT_BYTES = 256 * 1024;

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

  forward(client, upstream);
  forward(upstream, client);

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

/** `from.pipe(to)`, with the write batching below for TLS sources. */
function forward(from: net.Socket, to: net.Socket): void {
  const write = (chunk: Buffer): void => {
    to.write(chunk);
    if (to.writableLength >= MAX_UNSENT_BYTES) from.pause();
  };
  from.on('data', from instanceof tls.TLSSocket ? coalescing(to, write) : write);
  to.on('drain', () => from.resume());
  // As `pipe` does: the source's end is passed on once what it sent has been written. A client
  // may have shut its side while still logging in; that end has been seen already.
  if (from.readableEnded) to.end();
  else from.once('end', () => to.end());
  from.resume();
}

/**
 * Wraps `write` so that the chunks read in one turn of the event loop leave in at most two writes.
 * TLS delivers one chunk per record, and servers that send small records (Dovecot sends 4 KiB
 * ones) made piping cost a syscall per record: in a bulk FETCH the loopback writes were most of the
 * proxy's CPU time. The first chunk of a turn is written at once, so a lone reply (a NOOP's) waits
 * for nothing; any more in the same turn are corked and leave in one `writev` once the turn's reads
 * are done (`setImmediate`). A plain TCP source already arrives in 64 KiB reads; batching those
 * into a TLS destination would only add a copy, so they are written as they come.
 */
function coalescing(to: net.Socket, write: (chunk: Buffer) => void): (chunk: Buffer) => void {
  let inTurn = false;
  let corked = false;
  const endTurn = (): void => {
    inTurn = false;
    if (corked) {
      corked = false;
      to.uncork();
    }
  };
  return (chunk) => {
    if (!inTurn) {
      inTurn = true;
      setImmediate(endTurn);
    } else if (!corked) {
      corked = true;
      to.cork();
    }
    write(chunk);
  };
}

/**
 * A hand-driven client connection for protocol tests: write a line, read a line or an exact
 * number of bytes (IMAP literals), over plain TCP or verified TLS. Nothing is parsed for you, so
 * tests read like the conversation on the wire.
 */
import { readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export interface LineSessionOptions {
  readonly port: number;
  readonly host?: string;
  /** Use implicit TLS, trusting only this CA file. */
  readonly caFile?: string;
  /** TLS server name to send and verify; default none, so the certificate must match `host` (an IP SAN). */
  readonly servername?: string;
  /** Fail a read that waits longer than this; default 10 s. */
  readonly timeoutMs?: number;
}

export interface LineSession {
  /** Sends `line` followed by CRLF. */
  writeLine(line: string): void;
  /** Sends raw bytes. */
  write(data: Buffer | string): void;
  /** The next line without its CRLF. */
  readLine(): Promise<string>;
  /** Exactly `count` bytes. */
  readBytes(count: number): Promise<Buffer>;
  /** Reads lines until one starts with `prefix` (e.g. an IMAP tag); returns them all, that one last. */
  readUntil(prefix: string): Promise<string[]>;
  /** Resolves when the server closes the connection. */
  closed(): Promise<void>;
  close(): void;
}

/** Opens a connection; resolves once connected (and TLS verified). */
export async function openLineSession(options: LineSessionOptions): Promise<LineSession> {
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const socket: Socket = await new Promise((resolve, reject) => {
    const connected =
      options.caFile === undefined
        ? connectTcp({ host, port: options.port }, () => resolve(connected))
        : connectTls(
            {
              host,
              port: options.port,
              servername: options.servername,
              ca: readFileSync(options.caFile),
            },
            () => resolve(connected),
          );
    connected.once('error', reject);
  });

  let buffer = Buffer.alloc(0);
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    notify();
  });
  socket.on('close', () => {
    ended = true;
    notify();
  });
  socket.on('error', (error) => {
    failure = error;
    notify();
  });

  async function waitFor<T>(take: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const taken = take();
      if (taken !== undefined) return taken;
      if (failure !== undefined) throw failure;
      if (ended)
        throw new Error(
          `connection closed while waiting for ${what}; unread: ${JSON.stringify(buffer.toString())}`,
        );
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new Error(
          `timed out waiting for ${what}; unread: ${JSON.stringify(buffer.toString())}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  const readLine = (): Promise<string> =>
    waitFor(() => {
      const end = buffer.indexOf('\r\n');
      if (end < 0) return undefined;
      const line = buffer.subarray(0, end).toString('utf8');
      buffer = buffer.subarray(end + 2);
      return line;
    }, 'a line');

  return {
    writeLine(line: string): void {
      socket.write(`${line}\r\n`);
    },
    write(data: Buffer | string): void {
      socket.write(data);
    },
    readLine,
    readBytes: (count: number) =>
      waitFor(() => {
        if (buffer.length < count) return undefined;
        const bytes = buffer.subarray(0, count);
        buffer = buffer.subarray(count);
        return Buffer.from(bytes);
      }, `${count} bytes`),
    async readUntil(prefix: string): Promise<string[]> {
      const lines: string[] = [];
      for (;;) {
        const line = await readLine();
        lines.push(line);
        if (line.startsWith(prefix)) return lines;
      }
    },
    closed: () =>
      waitFor(() => (ended ? true : undefined), 'the server to close').then(() => undefined),
    close(): void {
      socket.destroy();
    },
  };
}

import net from 'node:net';
import tls from 'node:tls';

/**
 * The fuzz client's end of a connection: it writes as told and keeps everything it receives, so
 * the output can be checked as a whole once the conversation is over. Unlike the tests'
 * `Conversation`, it never fails on a close: a proxy hanging up is an outcome to check, not an error.
 */
export class ClientConnection {
  private socket: net.Socket;
  private readonly received: Buffer[] = [];
  private receivedBytes = 0;
  private wake: (() => void) | undefined;
  /** The connection is fully closed (whoever closed it). */
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  static open(port: number): Promise<ClientConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true }, () =>
        resolve(new ClientConnection(socket)),
      );
      socket.once('error', reject);
    });
  }

  /** Everything received so far, as one buffer. */
  get output(): Buffer {
    return Buffer.concat(this.received);
  }

  get outputLength(): number {
    return this.receivedBytes;
  }

  /**
   * Writes `bytes`, waiting for the kernel to take them when the proxy reads slowly. False when
   * the connection is gone, or nothing was taken within `timeoutMs` (the proxy stopped reading).
   */
  async write(bytes: Uint8Array, timeoutMs: number): Promise<'written' | 'closed' | 'stalled'> {
    if (this.closed || !this.socket.writable) return 'closed';
    if (this.socket.write(bytes)) return 'written';
    const drained = await this.until(
      () => this.closed || this.socket.writableLength === 0,
      timeoutMs,
    );
    if (this.closed) return 'closed';
    return drained ? 'written' : 'stalled';
  }

  /**
   * Waits until the output received after `offset` holds a complete line matching `pattern`;
   * returns that line, or undefined when the connection closed or `timeoutMs` passed first.
   */
  async lineAfter(offset: number, pattern: RegExp, timeoutMs: number): Promise<string | undefined> {
    let found: string | undefined;
    const seen = (): boolean => {
      const text = this.output.subarray(offset).toString('utf8');
      found = text
        .split('\r\n')
        .slice(0, -1)
        .find((line) => pattern.test(line));
      return found !== undefined || this.closed;
    };
    await this.until(seen, timeoutMs);
    return found;
  }

  /** Waits for the close; false if the connection is still open after `timeoutMs`. */
  waitForClose(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  /** Upgrades to TLS (client side), trusting `caPem`; false if the handshake failed. */
  async startTls(caPem: string, timeoutMs: number): Promise<boolean> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, ca: [caPem], servername: 'localhost' });
    let secured = false;
    secure.once('secureConnect', () => {
      secured = true;
    });
    this.socket = secure;
    this.listen(secure);
    await this.until(() => secured || this.closed, timeoutMs);
    return secured;
  }

  /** Half-closes: no more data from us, but keep reading. */
  end(): void {
    if (!this.closed) this.socket.end();
  }

  /** Vanishes: the connection is reset, whatever was under way. */
  destroy(): void {
    this.socket.destroy();
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.receivedBytes += chunk.length;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('drain', () => this.notify());
    socket.on('secureConnect', () => this.notify());
    socket.on('error', () => undefined);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits for `done` to hold, re-checking on every event of the socket; false on timeout. */
  private async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 50));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  }
}

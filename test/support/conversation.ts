import net from 'node:net';
import tls from 'node:tls';

/**
 * One side of a protocol conversation in a test: send lines, expect lines. Written independently of
 * the proxy's own line reader so the tests do not check the code with itself.
 */
export class Conversation {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  /**
   * Connects to `port` on 127.0.0.1. `from` picks the loopback source address (any of
   * 127.0.0.0/8), which the proxy's log then names: a test can find its own connection there.
   */
  static connect(port: number, from?: string): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress: from }, () =>
        resolve(new Conversation(socket)),
      );
      socket.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(typeof text === 'string' ? `${text}\r\n` : text);
  }

  /** Sends raw bytes with no line ending added. */
  sendRaw(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** The next line (without CRLF); fails after `timeoutMs` or when the peer closes first. */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lf = this.buffer.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.buffer.subarray(0, lf).toString('utf8').replace(/\r$/, '');
        this.buffer = this.buffer.subarray(lf + 1);
        return line;
      }
      if (this.closed)
        throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer.toString())}`);
      await this.wait(deadline);
    }
  }

  /** Reads the next line and checks it against a string (exact) or a pattern. */
  async expect(expected: string | RegExp, timeoutMs?: number): Promise<string> {
    const line = await this.line(timeoutMs);
    const ok = typeof expected === 'string' ? line === expected : expected.test(line);
    if (!ok) throw new Error(`expected ${String(expected)}, got ${JSON.stringify(line)}`);
    return line;
  }

  /** Exactly `count` raw bytes. */
  async bytes(count: number, timeoutMs = 30_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < count) {
      if (this.closed)
        throw new Error(`connection closed after ${this.buffer.length} of ${count} bytes`);
      await this.wait(deadline);
    }
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return out;
  }

  /** Resolves when the peer has closed the connection (and nothing more was sent). */
  async closedByPeer(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) await this.wait(deadline);
    if (this.buffer.length > 0)
      throw new Error(`unread data before close: ${JSON.stringify(this.buffer.toString())}`);
  }

  /** Upgrades to TLS after a STARTTLS exchange (client side). */
  async startTls(options: tls.ConnectionOptions): Promise<Conversation> {
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ ...options, socket: this.socket });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return new Conversation(secure);
  }

  close(): void {
    this.socket.destroy();
  }

  private wait(deadline: number): Promise<void> {
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      return Promise.reject(
        new Error(`timed out; unread: ${JSON.stringify(this.buffer.toString())}`),
      );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(
          new Error(
            `timed out waiting for data; unread: ${JSON.stringify(this.buffer.toString())}`,
          ),
        );
      }, remaining);
      this.waiting = () => {
        clearTimeout(timer);
        this.waiting = undefined;
        resolve();
      };
    });
  }
}

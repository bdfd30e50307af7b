import type { Duplex } from 'node:stream';

/** A client or server sent a line longer than the protocol's limit allows. */
export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`line longer than ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Reads CRLF-terminated lines and counted byte runs (IMAP literals) from a stream during the
 * pre-authentication conversation, then hands the stream back with whatever it had buffered.
 *
 * It keeps at most one line (plus one chunk) in memory and pauses the stream while nobody is
 * reading, so a client that floods us before logging in only fills its own socket buffers.
 */
export class LineReader {
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private released = false;

  private readonly onData = (chunk: Buffer): void => {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.stream.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };
  private readonly onError = (err: Error): void => {
    this.failure = err;
    this.notify();
  };

  constructor(
    private readonly stream: Duplex,
    /** Longest line accepted, in bytes, not counting the line ending. */
    private readonly maxLineBytes: number,
  ) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
    stream.pause();
  }

  /**
   * The next line without its line ending (CRLF, or a bare LF from lenient clients), decoded as
   * UTF-8; `null` when the peer closed the stream first.
   */
  async readLine(): Promise<string | null> {
    const raw = await this.readRawLine();
    return raw === null ? null : raw.toString('utf8');
  }

  /** Like `readLine`, but returns the bytes undecoded. */
  async readRawLine(): Promise<Buffer | null> {
    for (;;) {
      const lf = this.buffered.indexOf(LF);
      if (lf >= 0) {
        const end = lf > 0 && this.buffered[lf - 1] === CR ? lf - 1 : lf;
        if (end > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
        const line = this.buffered.subarray(0, end);
        this.buffered = this.buffered.subarray(lf + 1);
        return line;
      }
      if (this.buffered.length > this.maxLineBytes + 1)
        throw new LineTooLongError(this.maxLineBytes);
      if (!(await this.fill())) return null;
    }
  }

  /**
   * The first `count` bytes without consuming them, or fewer once a line has ended or the peer
   * has closed: enough to recognise what a connection starts with, never a wait for a short line.
   */
  async peek(count: number): Promise<Buffer> {
    while (this.buffered.length < count && this.buffered.indexOf(LF) < 0) {
      if (!(await this.fill())) break;
    }
    return this.buffered.subarray(0, count);
  }

  /** Exactly `count` bytes (an IMAP literal), or `null` if the peer closed first. */
  async readBytes(count: number): Promise<Buffer | null> {
    while (this.buffered.length < count) {
      if (!(await this.fill())) return null;
    }
    const bytes = this.buffered.subarray(0, count);
    this.buffered = this.buffered.subarray(count);
    return bytes;
  }

  /**
   * Stops reading and returns the bytes received but not yet consumed (a pipelining client may
   * already have sent its next commands). The stream is left paused for whoever takes it over.
   * A read still waiting for input ends with `null`, as if the peer had closed.
   */
  release(): Buffer {
    if (!this.released) {
      this.released = true;
      this.stream.off('data', this.onData);
      this.stream.off('end', this.onEnd);
      this.stream.off('close', this.onEnd);
      this.stream.off('error', this.onError);
      this.stream.pause();
    }
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    this.notify();
    return rest;
  }

  /** Waits for more input; false when there will be none. */
  private async fill(): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.ended || this.released) return false;
    const before = this.buffered.length;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      this.stream.resume();
    });
    if (this.failure) throw this.failure;
    if (this.released) return false;
    return this.buffered.length > before || !this.ended;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

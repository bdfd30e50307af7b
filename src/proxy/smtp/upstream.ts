import type net from 'node:net';
import { LineReader } from '../line-reader.js';
import {
  connectUpstream,
  describeTarget,
  upgradeToTls,
  UpstreamError,
  type UpstreamTarget,
  type UpstreamTlsOptions,
} from '../upstream.js';
import { answerWithin } from '../upstream-dialogue.js';
import {
  describeReply,
  readSmtpReply,
  SmtpReplySyntaxError,
  SmtpReplyTooLongError,
  type SmtpReply,
} from './reply.js';

export interface SmtpUpstreamOptions {
  readonly target: UpstreamTarget;
  readonly tls: UpstreamTlsOptions;
  /** The name we give in the EHLO that precedes STARTTLS, before the client has said its own. */
  readonly ourName: string;
  readonly maxLineBytes: number;
  /** How long to wait for each reply once the connection is up (the opening uses the connect timeout). */
  readonly replyTimeoutMs: number;
}

/** How long a polite `QUIT` may take before the connection is simply dropped. */
const QUIT_GRACE_MS = 2_000;

/**
 * The proxy's own SMTP dialogue with the upstream before the splice: one command, one complete
 * reply. The connection is on verified TLS from `open` onwards, whichever way the server offers it.
 */
export class SmtpUpstream {
  private constructor(
    private socket: net.Socket,
    private reader: LineReader,
    private readonly options: SmtpUpstreamOptions,
  ) {}

  /**
   * Connects, reads the `220` greeting and, for a STARTTLS server, does `EHLO` / `STARTTLS` / TLS
   * handshake. Throws `UpstreamError` (naming the server) when any of it fails.
   */
  static async open(options: SmtpUpstreamOptions): Promise<SmtpUpstream> {
    const { target } = options;
    const socket = await connectUpstream(target, options.tls);
    const upstream = new SmtpUpstream(
      socket,
      new LineReader(socket, options.maxLineBytes),
      options,
    );
    const openingTimeoutMs = options.tls.connectTimeoutMs;
    try {
      const greeting = await upstream.reply(openingTimeoutMs);
      if (greeting.code !== 220) {
        throw new UpstreamError(
          'unreachable',
          upstream.where,
          `the server refused the connection: ${describeReply(greeting)}`,
        );
      }
      if (target.security === 'starttls') {
        const ehlo = await upstream.command(`EHLO ${options.ourName}`, openingTimeoutMs);
        if (ehlo.code !== 250)
          throw new UpstreamError(
            'closed',
            upstream.where,
            `the server refused EHLO: ${describeReply(ehlo)}`,
          );
        const starttls = await upstream.command('STARTTLS', openingTimeoutMs);
        if (starttls.code !== 220)
          throw new UpstreamError(
            'tls',
            upstream.where,
            `the server refused STARTTLS: ${describeReply(starttls)}`,
          );
        await upstream.upgrade();
      }
      return upstream;
    } catch (err) {
      upstream.destroy();
      throw err;
    }
  }

  /** `host:port`, for messages. */
  get where(): string {
    return describeTarget(this.options.target);
  }

  /** Sends one command line and reads the complete reply. A `421` means the server is leaving: it throws. */
  async command(line: string, timeoutMs = this.options.replyTimeoutMs): Promise<SmtpReply> {
    if (this.socket.writable) this.socket.write(`${line}\r\n`);
    const reply = await this.reply(timeoutMs);
    if (reply.code === 421)
      throw new UpstreamError(
        'closed',
        this.where,
        `the server is closing the connection: ${describeReply(reply)}`,
      );
    return reply;
  }

  /**
   * Stops reading and returns the socket with the bytes already read past the last reply, for
   * the splice.
   */
  handOver(): { readonly socket: net.Socket; readonly pending: Buffer } {
    return { socket: this.socket, pending: this.reader.release() };
  }

  /** Says goodbye without waiting for the answer; the connection is dropped soon either way. */
  quit(): void {
    const socket = this.socket;
    this.reader.release();
    socket.on('error', () => undefined);
    // Nobody reads the 221; flowing mode lets the socket see the server's close.
    socket.resume();
    if (socket.writable) socket.end('QUIT\r\n');
    setTimeout(() => socket.destroy(), QUIT_GRACE_MS).unref();
  }

  destroy(): void {
    this.reader.release();
    this.socket.on('error', () => undefined);
    this.socket.destroy();
  }

  private reply(timeoutMs: number): Promise<SmtpReply> {
    return answerWithin(this.socket, this.where, timeoutMs, async () => {
      let reply: SmtpReply | null;
      try {
        reply = await readSmtpReply(this.reader);
      } catch (err) {
        if (err instanceof SmtpReplySyntaxError || err instanceof SmtpReplyTooLongError)
          throw new UpstreamError('closed', this.where, `the server sent an ${err.message}`);
        throw err;
      }
      if (reply === null)
        throw new UpstreamError('closed', this.where, 'the server closed the connection');
      return reply;
    });
  }

  private async upgrade(): Promise<void> {
    // Bytes after the 220 and before the handshake would be read as if they came over TLS
    // (the STARTTLS command injection of CVE-2011-0411's kind); no honest server sends any.
    if (this.reader.release().length > 0) {
      throw new UpstreamError(
        'tls',
        this.where,
        'the server sent data after its STARTTLS reply, before the TLS handshake',
      );
    }
    this.socket = await upgradeToTls(this.socket, this.options.target, this.options.tls);
    this.reader = new LineReader(this.socket, this.options.maxLineBytes);
  }
}

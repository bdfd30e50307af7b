import { Duplex } from 'node:stream';

/**
 * A stream for the pure parsers: `input` cut into chunks of the given sizes, then (optionally) an
 * endless run of `filler` chunks, produced only when the reader asks. `delivered` counts the bytes
 * the reader was actually given, which is what bounds its memory: it cannot hold more than it took.
 */
export interface FedStream {
  readonly stream: Duplex;
  /** Bytes handed to the reader so far (its `data` events), counted from `watch()` on. */
  delivered(): number;
  /**
   * Starts counting. Call it once the reader is attached: the reader pauses the stream, and a
   * listener added to a paused stream does not set it flowing.
   */
  watch(): void;
}

export function feed(input: Uint8Array, sizes: readonly number[], filler?: Buffer): FedStream {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < input.length; i += 1) {
    const size = Math.max(1, sizes[i % sizes.length] ?? input.length);
    chunks.push(Buffer.from(input.subarray(offset, offset + size)));
    offset += size;
  }
  let next = 0;
  const stream = new Duplex({
    // One chunk per request, and no read-ahead beyond it.
    highWaterMark: 1,
    read() {
      const chunk = chunks[next];
      if (chunk !== undefined) {
        next += 1;
        this.push(chunk);
      } else if (filler !== undefined) {
        this.push(filler);
      } else {
        this.push(null);
      }
    },
    write(_chunk, _encoding, done) {
      done();
    },
  });
  let delivered = 0;
  let watching = false;
  return {
    stream,
    delivered: () => delivered,
    watch() {
      if (watching) return;
      watching = true;
      stream.on('data', (chunk: Buffer) => {
        delivered += chunk.length;
      });
    },
  };
}

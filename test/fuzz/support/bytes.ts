import fc from 'fast-check';

/**
 * Byte-level tools shared by every protocol's fuzzer: mutations of a well-formed conversation
 * (what a broken or hostile client makes of one) and the ways it is cut into writes.
 */

/** One change to a byte stream; positions are fractions of its length, so they shrink well. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly value: number }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number }
  /** Every CRLF becomes this: bare LF (lenient clients), bare CR, or LF CR. */
  | { readonly kind: 'line-endings'; readonly ending: '\n' | '\r' | '\n\r' }
  | { readonly kind: 'truncate'; readonly at: number };

const fraction = fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000);

/** Bytes that mean something to a line protocol, more often than chance would pick them. */
const interestingByte = fc.constantFrom(
  0x00,
  0x0a,
  0x0d,
  0x20,
  0x09,
  0x22,
  0x5c,
  0x7b,
  0x7d,
  0x2b,
  0x2a,
  0x28,
  0x29,
  0x3d,
  0x7f,
  0x80,
  0xc3,
  0xff,
);

/** A byte value, biased towards the ones line protocols care about. */
export const anyByte = fc.oneof(interestingByte, fc.integer({ min: 0, max: 255 }));

/** Random bytes of up to `maxLength`. */
export function randomBytes(maxLength: number): fc.Arbitrary<Uint8Array> {
  return fc.array(anyByte, { maxLength }).map((bytes) => Uint8Array.from(bytes));
}

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fraction, value: anyByte }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: fraction,
    length: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fraction, bytes: randomBytes(24) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fraction,
    length: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({
    kind: fc.constant('line-endings' as const),
    ending: fc.constantFrom('\n' as const, '\r' as const, '\n\r' as const),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fraction }),
);

/** Applies mutations in order. */
export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes: Buffer = Buffer.from(input);
  for (const m of mutations) bytes = applyMutation(bytes, m);
  return bytes;
}

function applyMutation(bytes: Buffer, m: Mutation): Buffer {
  const at = m.kind === 'line-endings' ? 0 : Math.floor(m.at * bytes.length);
  switch (m.kind) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const copy = Buffer.from(bytes);
      copy[Math.min(at, copy.length - 1)] = m.value;
      return copy;
    }
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'duplicate':
      return Buffer.concat([bytes.subarray(0, at + m.length), bytes.subarray(at)]);
    case 'line-endings':
      return Buffer.from(bytes.toString('latin1').replaceAll('\r\n', m.ending), 'latin1');
    case 'truncate':
      return bytes.subarray(0, at);
  }
}

/**
 * How a client cuts its bytes into writes: sizes used in turn, so a stream is split at
 * arbitrary byte boundaries (inside a CRLF, inside a UTF-8 character, inside a literal).
 */
export const writeSizes: fc.Arbitrary<readonly number[]> = fc.oneof(
  fc.constant([Number.MAX_SAFE_INTEGER]),
  fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
  fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 4 }),
);

/** At most this many writes per conversation; whatever is left goes in the last one. */
const MAX_WRITES = 48;

/** Cuts `bytes` into writes of the given sizes, cycling through them. */
export function cut(bytes: Uint8Array, sizes: readonly number[]): Buffer[] {
  const writes: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < bytes.length; i += 1) {
    const size =
      writes.length === MAX_WRITES - 1 ? bytes.length : (sizes[i % sizes.length] ?? bytes.length);
    writes.push(Buffer.from(bytes.subarray(offset, offset + size)));
    offset += size;
  }
  return writes;
}

/** Shows bytes readably in a failure report. */
export function printable(bytes: Uint8Array, max = 400): string {
  const text = JSON.stringify(Buffer.from(bytes.subarray(0, max)).toString('latin1'));
  return bytes.length > max ? `${text}... (${bytes.length} bytes)` : text;
}

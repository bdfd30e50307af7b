import fc from 'fast-check';
import { mutate, mutation, randomBytes, writeSizes } from './bytes.js';
import {
  ending,
  gap,
  vanishAt,
  type ClientAction,
  type ClientScript,
  type Ending,
  type Expectation,
} from './client-script.js';

/**
 * Builds client scripts from a protocol's commands: the protocol modules say what a command looks
 * like on the wire and what the proxy must answer; this module turns a list of them into a
 * conversation that follows the protocol, or into a hostile one (mutated, with junk spliced in).
 */

/** One client command, compiled against the protocol model. */
export interface CompiledCommand {
  /** Bytes to send, each part followed by what must come back before the next. */
  readonly parts: readonly ClientAction[];
  /** The credentials the authenticator must see for this command, if it logs in. */
  readonly login?: { readonly username: string; readonly password: string };
  /** The conversation is over after this command (a logout, a login that succeeded). */
  readonly ends: boolean;
  /** SASL blobs and other encodings of secrets the command sent. */
  readonly secrets: readonly string[];
}

/** A part that sends `text` and waits for a line matching `until` that must match `is`. */
export function send(text: string | Uint8Array, expect?: Expectation): ClientAction {
  return {
    kind: 'send',
    bytes: typeof text === 'string' ? Buffer.from(text, 'utf8') : text,
    ...(expect ? { expect } : {}),
  };
}

/** Escapes text for use inside a RegExp. */
export function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A client that follows the protocol leaves in order or vanishes; silence is the hostile fuzzer's. */
const politeEnding = fc.constantFrom<Ending>('half-close', 'half-close', 'vanish');

/** A conversation that follows the protocol, command by command, up to the first that ends it. */
export function protocolScript(
  commands: fc.Arbitrary<readonly CompiledCommand[]>,
): fc.Arbitrary<ClientScript> {
  return fc
    .record({
      commands,
      writeSizes,
      gap,
      waitForGreeting: fc.boolean(),
      ending: politeEnding,
      vanishAt,
    })
    .map(({ commands: all, ...rest }) => {
      const end = all.findIndex((c) => c.ends);
      const used = end < 0 ? all : all.slice(0, end + 1);
      return {
        ...rest,
        actions: used.flatMap((c) => c.parts),
        secrets: used.flatMap((c) => c.secrets),
        expectedLogins: used.flatMap((c) => (c.login ? [c.login] : [])),
      };
    });
}

/** Junk a hostile client sends, with the floods that may follow it. */
export interface HostileFragment {
  readonly bytes: Uint8Array;
  /** Written after everything else, as fast as the proxy takes it. */
  readonly flood?: { readonly bytes: number; readonly pattern: string };
}

const flood = fc.record({
  bytes: fc.constantFrom(64 * 1024, 256 * 1024, 1024 * 1024),
  pattern: fc.constantFrom('x', 'a NOOP\r\n', '\0', 'AAAA', '\r'),
});

/** Random bytes, and anything in `specific` (the protocol's own hostile commands). */
export function hostileFragment(specific: fc.Arbitrary<string>): fc.Arbitrary<HostileFragment> {
  return fc.oneof(
    fc.record({ bytes: randomBytes(64) }),
    specific.map((text) => ({ bytes: Buffer.from(text, 'latin1') })),
    fc.record({ bytes: specific.map((text) => Buffer.from(text, 'latin1')), flood }),
  );
}

/**
 * A hostile conversation: commands of a plausible one (their bytes, without waiting for
 * answers), junk fragments spliced in between, then byte-level mutations.
 */
export function hostileScript(
  commands: fc.Arbitrary<readonly CompiledCommand[]>,
  fragment: fc.Arbitrary<HostileFragment>,
): fc.Arbitrary<ClientScript> {
  return fc
    .record({
      commands,
      fragments: fc.array(fc.tuple(fc.nat(), fragment), { maxLength: 3 }),
      mutations: fc.array(mutation, { maxLength: 4 }),
      writeSizes,
      gap,
      waitForGreeting: fc.boolean(),
      ending,
      vanishAt,
    })
    .map(({ commands: all, fragments, mutations, ...rest }) => {
      const pieces: Uint8Array[] = all.flatMap((c) =>
        c.parts.flatMap((part) => (part.kind === 'send' ? [part.bytes] : [])),
      );
      // A fragment with a flood goes last, right before its flood (a literal's announced bytes, say).
      const last: Uint8Array[] = [];
      const floods: ClientAction[] = [];
      for (const [at, { bytes, flood: junk }] of fragments) {
        if (junk) {
          last.push(bytes);
          floods.push({ kind: 'flood', bytes: junk.bytes, pattern: junk.pattern });
        } else {
          pieces.splice(at % (pieces.length + 1), 0, bytes);
        }
      }
      const stream = Buffer.concat([mutate(Buffer.concat(pieces), mutations), ...last]);
      return {
        ...rest,
        actions: [send(stream), ...floods],
        secrets: all.flatMap((c) => c.secrets),
      };
    });
}

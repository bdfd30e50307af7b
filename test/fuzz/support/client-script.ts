import fc from 'fast-check';

/** What a fuzz client does: the bytes it sends, what it waits for, and how it leaves. */

/** What the client must hear before it goes on, in a conversation that follows the protocol. */
export interface Expectation {
  /** The line that completes the answer. */
  readonly until: RegExp;
  /** What that line must be (the model's prediction); anything when absent. */
  readonly is?: RegExp;
}

/** One step of a client: bytes (and what must come back), a flood, or a TLS handshake. */
export type ClientAction =
  | { readonly kind: 'send'; readonly bytes: Uint8Array; readonly expect?: Expectation }
  /** Junk written as fast as the proxy takes it, e.g. behind a literal it must refuse. */
  | { readonly kind: 'flood'; readonly bytes: number; readonly pattern: string }
  /** A real TLS handshake after the proxy's STARTTLS go-ahead. */
  | { readonly kind: 'starttls' };

/** How the client leaves once its actions are done. */
export type Ending =
  /** Sends FIN and waits for the proxy to close. */
  | 'half-close'
  /** Says nothing more; the idle timeout must end it. */
  | 'silent'
  /** Resets the connection after `vanishAt` of its bytes, mid-command as likely as not. */
  | 'vanish';

/** A whole client conversation, as generated. */
export interface ClientScript {
  readonly actions: readonly ClientAction[];
  /** How the bytes are cut into writes (see `cut`). */
  readonly writeSizes: readonly number[];
  /** Pause between writes: none (same tick), a turn of the event loop, or a millisecond. */
  readonly gap: 0 | 'tick' | 1;
  readonly waitForGreeting: boolean;
  readonly ending: Ending;
  /** For `vanish`: the fraction of the client's bytes sent before it goes. */
  readonly vanishAt: number;
  /** Secrets beyond the accounts' passwords the log must not hold (SASL blobs of this script). */
  readonly secrets: readonly string[];
  /** For a conversation that follows the protocol: the logins the authenticator must see, in order. */
  readonly expectedLogins?: readonly { readonly username: string; readonly password: string }[];
}

/** Hostile clients leave every way; most half-close, a few stay silent (each costs an idle timeout). */
export const ending: fc.Arbitrary<Ending> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('half-close' as const) },
  { weight: 3, arbitrary: fc.constant('vanish' as const) },
  { weight: 1, arbitrary: fc.constant('silent' as const) },
);
/** Pauses between writes, so that they reach the proxy as separate reads. */
export const gap: fc.Arbitrary<ClientScript['gap']> = fc.constantFrom(
  0 as const,
  0 as const,
  'tick' as const,
  1 as const,
);
/** Where in its bytes a vanishing client goes: anywhere, so mid-command as likely as not. */
export const vanishAt: fc.Arbitrary<number> = fc
  .integer({ min: 0, max: 1000 })
  .map((n) => n / 1000);

/**
 * The mail client's password, sealed in an object the rest of the proxy can hold, pass along and
 * compare, but not read: the authenticator wraps it as it arrives. Its text is read by the vault
 * (to derive keys) and, where the provider itself judges the password (the password grant, or
 * the login's password used as the app's client secret), by the grant that sends it; nowhere
 * else. Logging one prints a placeholder.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const texts = new WeakMap<Passphrase, string>();
/** Digests are keyed by a secret that lives as long as the process: useless for testing guesses. */
const digestKey = randomBytes(32);

export class Passphrase {
  constructor(text: string) {
    texts.set(this, text);
  }

  /** Compares without leaking how much of the password matched. */
  sameAs(other: Passphrase): boolean {
    return timingSafeEqual(this.digest(), other.digest());
  }

  /** An HMAC of the password under a per-process key: the same for the same password. */
  digest(): Buffer {
    return createHmac('sha256', digestKey).update(textOf(this), 'utf8').digest();
  }

  /** {@link digest} as text, for single-flight and map keys. */
  tag(): string {
    return this.digest().toString('base64');
  }

  toJSON(): string {
    return '[password]';
  }

  toString(): string {
    return '[password]';
  }
}

/** The password itself: for the vault's key derivation, and for a provider that judges it. */
export function textOf(passphrase: Passphrase): string {
  const text = texts.get(passphrase);
  if (text === undefined) throw new TypeError('not a Passphrase');
  return text;
}

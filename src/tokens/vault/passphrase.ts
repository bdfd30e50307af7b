/**
 * The mail client's password, sealed in an object the rest of the token layer can hold, pass
 * along and compare, but not read. It opens the vault and, where the provider itself judges the
 * password (the password grant, or the login's password used as the app's client secret), goes to
 * the provider; nowhere else. Logging one prints a placeholder.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const texts = new WeakMap<Passphrase, string>();

export class Passphrase {
  constructor(text: string) {
    texts.set(this, text);
  }

  /** Compares without leaking how much of the password matched. */
  sameAs(other: Passphrase): boolean {
    return timingSafeEqual(digest(textOf(this)), digest(textOf(other)));
  }

  /** A name for single-flight keys: the same for the same password, useless for guessing it. */
  tag(): string {
    return digest(textOf(this)).toString('base64');
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

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

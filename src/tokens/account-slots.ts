/**
 * What the daemon knows of each account between logins: one slot per token subject, holding the
 * account's state and what goes with it. The token manager and its refresher are the only
 * writers, and move between states through the two rules at the end of this file; `status` reads
 * the states. The diagram of the states is in token-manager.ts.
 */
import type { StoredTokenFields } from '../config/types.js';
import type { OAuthError, OAuthErrorKind, TokenSet } from '../oauth/index.js';
import type { AccountKey } from './vault/vault.js';

export type AccountState =
  /** Nothing learned since start, or the tokens were deleted. The store may still hold tokens. */
  | { readonly name: 'empty' }
  /** A sign-in waits for the user; if nobody completes it, the account goes back to `before`. */
  | { readonly name: 'pending'; readonly before: ReturnState }
  /** Authorised while no login with a proven password waited: the tokens wait here for one. */
  | { readonly name: 'authorized-unsaved'; readonly tokens: TokenSet }
  /** Tokens stored, or kept in memory while the store refuses them; used until they are due. */
  | { readonly name: 'active' }
  /** A refresh is under way: one per account in this process, and under the store's lock one per fleet. */
  | { readonly name: 'refreshing' }
  /**
   * The provider refused the grant: the dead tokens are gone. A sign-in starts at once (pending
   * returns here if nobody completes it); the password flow's next login makes a new grant.
   */
  | { readonly name: 'needs-reauthorization'; readonly code: string }
  /**
   * The last token request failed in a way a new sign-in does not mend: `transient` (every token
   * kept, tried again at the next login) or a config problem the user must fix.
   */
  | {
      readonly name: 'failed';
      readonly kind: Exclude<OAuthErrorKind, 'reauthorise'>;
      readonly code: string;
    };

/** A state a request or refresh moves an account to. */
export type SettledState = Exclude<AccountState, { name: 'pending' | 'authorized-unsaved' }>;

/**
 * A state a pending sign-in can fall back to: nothing is under way by then, and tokens authorised
 * meanwhile would have ended the sign-in.
 */
export type ReturnState = Exclude<SettledState, { name: 'refreshing' }>;

export interface AccountSlot {
  state: AccountState;
  /** The account's key, once a login's password opened the stored tokens or sealed new ones. */
  key?: AccountKey;
  /**
   * The client secret decrypted from `client_secret_encrypted`; `null` once a login found none to
   * decrypt; undefined while no login has looked.
   */
  clientSecret?: string | null;
  /** The upstream refused the access token: the next login refreshes, fresh or not. */
  distrusted: boolean;
  /**
   * A wrong password deleted the tokens (`delete_account_token_on_password_error`): until new
   * tokens are stored, no waiting login's password is proven.
   */
  contested: boolean;
  /** When the last token request went, and how, in words for `status`. */
  lastOutcome?: { readonly at: number; readonly outcome: string };
  /**
   * Sealed fields the store refused (read-only or full disk). They are newer than the store (the
   * provider may have rotated the refresh token already), so they are used instead of it and
   * written as soon as the store takes them.
   */
  unwritten?: StoredTokenFields;
  /** {@link unwritten} is being written, so a read meanwhile does not write it a second time. */
  flushing: boolean;
  /**
   * What the store last returned. With a shared store unreachable, a login whose access token is
   * still valid opens these and goes on; anything that must write fails.
   */
  lastRead?: StoredTokenFields;
}

/** The slots, by token subject key; a slot is made on first use and lives as long as the daemon. */
export class AccountSlots {
  private readonly slots = new Map<string, AccountSlot>();

  get(key: string): AccountSlot {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { state: { name: 'empty' }, distrusted: false, contested: false, flushing: false };
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** The slot if one was made, without making one (for reading). */
  peek(key: string): AccountSlot | undefined {
    return this.slots.get(key);
  }

  /** Keys of the slots in the named state. */
  *inState(name: AccountState['name']): IterableIterator<string> {
    for (const [key, slot] of this.slots) if (slot.state.name === name) yield key;
  }
}

/**
 * Moves an account to `next` as a request or a refresh ends. A pending sign-in stays pending, and
 * `next` becomes where it goes back to if nobody completes it; tokens authorised while no login
 * waited stay until a password stores them: they are newer than anything a refresh settles.
 */
export function moveTo(slot: AccountSlot, next: SettledState): void {
  if (slot.state.name === 'pending') {
    if (next.name !== 'refreshing') slot.state = { name: 'pending', before: next };
  } else if (slot.state.name !== 'authorized-unsaved') slot.state = next;
}

/**
 * The account's last token request went as `outcome` says (words for `status`); `failure`, if it
 * failed, moves the account to the state the provider's verdict calls for.
 */
export function settle(slot: AccountSlot, outcome: string, failure?: OAuthError): void {
  slot.lastOutcome = { at: Date.now(), outcome };
  moveTo(
    slot,
    !failure
      ? { name: 'active' }
      : failure.kind === 'reauthorise'
        ? { name: 'needs-reauthorization', code: failure.code }
        : { name: 'failed', kind: failure.kind, code: failure.code },
  );
}

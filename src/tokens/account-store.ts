/**
 * The token store as the token manager leans on it: new tokens sealed (with the account's client
 * secret) and written, and the two fallbacks that keep mail flowing when the store misbehaves:
 *
 * - a store that refuses a write (read-only or full disk): the sealed fields stay in the account's
 *   slot, are used instead of what the store holds (they are newer: the provider may already have
 *   rotated the refresh token), and are written again at the next read;
 * - a shared store that cannot be reached: logins open what it last returned, so a still-valid
 *   access token goes on working; anything that must write fails as temporary.
 */
import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import type { AccountSlots } from './account-slots.js';
import { TokenStoreUnavailableError } from './stores/store-errors.js';
import type { AccountChange, TokenStore } from './stores/token-store.js';
import type { TokenSubject } from './subject.js';
import type { TokenSet } from '../oauth/index.js';
import { readFields, type AccountKey, type Vault } from './vault/vault.js';

export class AccountStore {
  constructor(
    readonly store: TokenStore,
    private readonly vault: Vault,
    private readonly slots: AccountSlots,
    private readonly log: Logger,
  ) {}

  /**
   * Seals and writes new tokens under `key` (see {@link AccountStore.write}). New tokens, whichever
   * way they came, lift the upstream's refusal of the old ones and any doubt about the password.
   */
  async save(subject: TokenSubject, tokens: TokenSet, key: AccountKey): Promise<void> {
    const slot = this.slots.get(subject.key);
    slot.key = key;
    slot.distrusted = false;
    slot.contested = false;
    await this.write(subject.key, this.seal(subject, tokens, key));
  }

  /** The fields the store keeps for these tokens under `key`, the client secret re-encrypted with them. */
  seal(subject: TokenSubject, tokens: TokenSet, key: AccountKey): StoredTokenFields {
    const { clientSecret } = this.slots.get(subject.key);
    return this.vault.seal(key, {
      tokens: {
        accessToken: tokens.accessToken,
        accessTokenExpiry: tokens.expiresAt,
        ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
      },
      clientSecret: subject.account.clientSecret ? undefined : (clientSecret ?? undefined),
    });
  }

  /**
   * An account's stored fields: unwritten ones first, then the token store, then tokens left in
   * the config file.
   *
   * @throws LoginFailure (`temporary`) when the store cannot be read and nothing was read before.
   */
  async read(subject: TokenSubject): Promise<StoredTokenFields | undefined> {
    const slot = this.slots.get(subject.key);
    if (slot.unwritten) {
      this.flush(subject.key);
      return slot.unwritten;
    }
    try {
      const { fields, fromStore } = await readFields(this.store, subject);
      if (fromStore && fields !== undefined) slot.lastRead = fields;
      else delete slot.lastRead;
      return fields;
    } catch (err) {
      if (err instanceof TokenStoreUnavailableError && slot.lastRead !== undefined) {
        this.log.debug(
          { event: 'token_store_unavailable', account: subject.key, err: err.message },
          'token store unreachable; using the tokens it last returned',
        );
        return slot.lastRead;
      }
      this.log.error(
        { event: 'token_store_unreadable', err: (err as Error).message },
        'cannot read the token store',
      );
      throw new LoginFailure(
        'temporary',
        `The proxy cannot read its token store: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Writes an account's fields. A refusal is logged loudly but not thrown: the tokens are valid,
   * and refusing the user mail would not bring the disk back.
   */
  async write(key: string, fields: StoredTokenFields): Promise<void> {
    const slot = this.slots.get(key);
    delete slot.unwritten;
    try {
      await this.writeLocked(key, fields);
    } catch (err) {
      slot.unwritten = fields;
      this.refused(key, err);
    }
  }

  /**
   * Writes under the account's lock, so a refresh under way (it holds the lock while it asks the
   * provider) finishes first and never overwrites these newer tokens with its own. Where no lock
   * can be taken at all (a read-only directory), as a plain write, which then says why it failed.
   */
  private async writeLocked(key: string, fields: StoredTokenFields): Promise<void> {
    let locked = false;
    try {
      await this.store.update(key, async () => {
        locked = true;
        return { change: { kind: 'write', fields }, result: undefined };
      });
    } catch (err) {
      if (locked) throw err;
      await this.store.write(key, fields);
    }
  }

  /**
   * Runs `decide` under the account's lock (see {@link TokenStore.update}) with the newest fields
   * there are (unwritten ones before the store's) and the store's own. Fields it writes are kept
   * in memory until the store has them, so a refused write does not lose a rotated refresh token.
   *
   * @throws what the store throws (the fields `decide` wrote are then still in memory).
   */
  async update<T>(
    subject: TokenSubject,
    decide: (
      newest: StoredTokenFields | undefined,
      inStore: StoredTokenFields | undefined,
    ) => Promise<{ change: AccountChange; result: T }>,
  ): Promise<T> {
    const slot = this.slots.get(subject.key);
    let wrote = false;
    try {
      const result = await this.store.update<T>(subject.key, async (current) => {
        const newest = slot.unwritten ?? current ?? subject.account.tokensInConfig;
        const decision = await decide(newest, current);
        if (decision.change.kind === 'write') {
          slot.unwritten = decision.change.fields;
          // Marked as being written, so a read meanwhile does not write it a second time.
          slot.flushing = wrote = true;
        }
        return decision;
      });
      if (wrote) delete slot.unwritten;
      return result;
    } finally {
      slot.flushing = false;
    }
  }

  /** Another process or instance wrote the account: what this one could not write is stale. */
  forget(key: string): void {
    delete this.slots.get(key).unwritten;
  }

  /** Logs a write the store refused; the fields stay in memory. */
  refused(account: string, err: unknown): void {
    this.log.error(
      { event: 'token_store_write_failed', account, err: (err as Error).message },
      'could not save tokens; they are kept in memory and written when the store accepts them (until then a restart loses them)',
    );
  }

  /** Retries writing fields the store refused earlier; one attempt per account at a time. */
  private flush(key: string): void {
    const slot = this.slots.get(key);
    const fields = slot.unwritten;
    if (slot.flushing || !fields) return;
    slot.flushing = true;
    this.store
      .write(key, fields)
      .then(
        () => {
          if (slot.unwritten === fields) delete slot.unwritten;
          this.log.info(
            { event: 'token_store_written', account: key },
            'tokens kept in memory are now saved',
          );
        },
        () => undefined,
      )
      .finally(() => (slot.flushing = false));
  }
}

/**
 * Per-instance, unbounded in-memory storage for oidc-provider. Its bundled memory adapter shares
 * one 1000-entry LRU per process, which could evict a live refresh token in a long test and fail
 * it with a confusing `invalid_grant`; this one keeps everything until it expires.
 */

type Payload = Record<string, unknown> & {
  grantId?: string;
  userCode?: string;
  uid?: string;
  consumed?: number;
};

interface Entry {
  readonly payload: Payload;
  readonly expiresAt: number;
}

/** Shared state of one identity provider's adapters. */
class Store {
  readonly entries = new Map<string, Entry>();
  readonly grantMembers = new Map<string, Set<string>>();
  readonly byUserCode = new Map<string, string>();
  readonly bySessionUid = new Map<string, string>();

  get(key: string): Payload | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }
}

const GRANT_BOUND = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

class StoreAdapter {
  readonly #model: string;
  readonly #store: Store;

  constructor(model: string, store: Store) {
    this.#model = model;
    this.#store = store;
  }

  #key(id: string): string {
    return `${this.#model}:${id}`;
  }

  async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
    const key = this.#key(id);
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.#store.entries.set(key, { payload, expiresAt });
    if (GRANT_BOUND.has(this.#model) && typeof payload.grantId === 'string') {
      const members = this.#store.grantMembers.get(payload.grantId) ?? new Set<string>();
      members.add(key);
      this.#store.grantMembers.set(payload.grantId, members);
    }
    if (typeof payload.userCode === 'string') this.#store.byUserCode.set(payload.userCode, id);
    if (this.#model === 'Session' && typeof payload.uid === 'string')
      this.#store.bySessionUid.set(payload.uid, id);
  }

  async find(id: string): Promise<Payload | undefined> {
    return this.#store.get(this.#key(id));
  }

  async findByUserCode(userCode: string): Promise<Payload | undefined> {
    const id = this.#store.byUserCode.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid: string): Promise<Payload | undefined> {
    const id = this.#store.bySessionUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id: string): Promise<void> {
    const payload = this.#store.get(this.#key(id));
    if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.#store.entries.delete(this.#key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const key of this.#store.grantMembers.get(grantId) ?? []) this.#store.entries.delete(key);
    this.#store.grantMembers.delete(grantId);
  }
}

/** A fresh, empty storage; pass the result as oidc-provider's `adapter` option. */
export function createStoreAdapter(): (model: string) => StoreAdapter {
  const store = new Store();
  return (model) => new StoreAdapter(model, store);
}

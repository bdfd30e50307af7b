/**
 * The token store as a file: an INI file of per-account token sections in email-oauth2-proxy's
 * format (the same as its `--cache-store` file), separate from the configuration, which is never
 * rewritten.
 *
 * Several processes share it (the daemon, a CLI authorising an account, a second daemon), so every
 * change is a read-modify-write of one account's section under `<path>.lock`, and the file is
 * replaced atomically. {@link FileTokenStore.update} also holds a lock file of the account's own
 * for as long as it decides (a refresh), so one refresh runs per account across every process
 * while the other accounts' writes go on.
 */

import { createHash } from 'node:crypto';
import { constants, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, realpath, utimes } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { STORED_TOKEN_FIELDS, type StoredTokenFields } from '../../config/types.js';
import { parseIni, stringifyIni, type IniDocument } from '../../config/configparser.js';
import {
  isErrno,
  LockTimeoutError,
  removeAbandonedTemporaries,
  withLockFile,
  writeFileAtomic,
  type LockOptions,
} from '../atomic-write.js';
import type { AccountChange, TokenStore } from './token-store.js';

/** The keys of a section that are token fields; anything else in a section is left alone. */
export const TOKEN_FIELD_NAMES = STORED_TOKEN_FIELDS;

/**
 * The token store cannot be read, parsed, locked or written. `message` names the file and says what
 * to do; it never contains token values.
 */
export class TokenStoreError extends Error {
  override readonly name = 'TokenStoreError';
  /** Stable code for callers that branch on the error kind. */
  readonly code = 'ERR_TOKEN_STORE';

  constructor(
    /** The token store file. */
    readonly path: string,
    problem: string,
    cause?: unknown,
  ) {
    super(`Token store ${path}: ${problem}`, cause === undefined ? undefined : { cause });
  }
}

/**
 * One token store file. Reads are lock-free (the file is only ever replaced whole). Writes from this
 * object run one at a time; writes from other objects and processes are kept apart by
 * `<path>.lock`. Each write re-reads the file and changes only its own account, so concurrent
 * writers for different accounts never lose each other's tokens.
 */
export class FileTokenStore implements TokenStore {
  private queue: Promise<unknown> = Promise.resolve();
  /** Each account's fields as this object last wrote or saw them, to tell others' changes from ours. */
  private readonly seen = new Map<string, string>();
  private readonly listeners = new Set<(account: string) => void>();
  private watcher: FSWatcher | undefined;
  private rescan: NodeJS.Timeout | undefined;

  constructor(
    /** The file; its directory is created (mode 0700) on first write if missing. */
    readonly path: string,
    private readonly lockOptions: LockOptions = {},
  ) {}

  get location(): string {
    return this.path;
  }

  /**
   * The account's token fields, or undefined when the store (or the account's section) does not exist.
   *
   * @throws {@link TokenStoreError} if the file exists but cannot be read or parsed
   */
  async read(account: string): Promise<StoredTokenFields | undefined> {
    const section = (await this.load()).get(account);
    return section === undefined ? undefined : pickTokenFields(section);
  }

  /** Every account with a section in the file. */
  async accounts(): Promise<string[]> {
    return [...(await this.load()).keys()];
  }

  /**
   * Holds the account's own lock file (`<path>.<hash>.lock`, touched while held so that a long
   * refresh is not judged stale) while `decide` looks at the fields as stored now; its change is
   * then written under the file's lock like any other.
   */
  async update<T>(
    account: string,
    decide: (
      current: StoredTokenFields | undefined,
    ) => Promise<{ readonly change: AccountChange; readonly result: T }>,
  ): Promise<T> {
    assertAccountName(this.path, account);
    await this.ensureDirectory();
    const lockPath = `${this.path}.${createHash('sha256').update(account).digest('hex').slice(0, 16)}.lock`;
    const staleMs = this.lockOptions.staleMs ?? 10_000;
    let decided: { readonly change: AccountChange; readonly result: T };
    try {
      decided = await withLockFile(
        lockPath,
        async () => {
          const heartbeat = setInterval(() => {
            const now = new Date();
            utimes(lockPath, now, now).catch(() => undefined);
          }, staleMs / 3);
          try {
            const outcome = await decide(await this.read(account));
            await this.apply(account, outcome.change);
            return outcome;
          } finally {
            clearInterval(heartbeat);
          }
        },
        // A refresh may wait on the provider for a while; the lock is kept fresh meanwhile.
        { ...this.lockOptions, timeoutMs: Math.max(this.lockOptions.timeoutMs ?? 30_000, 120_000) },
      );
    } catch (error) {
      if (!(error instanceof LockTimeoutError)) throw error;
      throw new TokenStoreError(this.path, `cannot lock ${account} (${describe(error)})`, error);
    }
    return decided.result;
  }

  private apply(account: string, change: AccountChange): Promise<void> {
    switch (change.kind) {
      case 'write':
        return this.write(account, change.fields);
      case 'remove':
        return this.remove(account);
      case 'keep':
        return Promise.resolve();
    }
  }

  /**
   * Watches the file's directory (the file itself is replaced by a rename at every write) and
   * tells `listener` of each account whose fields another writer changed. Changes this object
   * made are not reported.
   */
  onChange(listener: (account: string) => void): () => void {
    this.listeners.add(listener);
    this.startWatching();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.stopWatching();
    await this.idle();
  }

  private startWatching(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name !== null && name !== basename(this.path)) return;
        // A rename shows as several events; one read after they settle is enough.
        clearTimeout(this.rescan);
        this.rescan = setTimeout(() => void this.reportChanges(), 50);
      });
      this.watcher.on('error', () => this.stopWatching());
      void this.reportChanges(false);
    } catch {
      // No directory yet, or no inotify: changes by others are then seen at the next read.
      this.watcher = undefined;
    }
  }

  private stopWatching(): void {
    clearTimeout(this.rescan);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private async reportChanges(tell = true): Promise<void> {
    let document: IniDocument;
    try {
      document = await this.load();
    } catch {
      return;
    }
    const accounts = new Set([...this.seen.keys(), ...document.keys()]);
    for (const account of accounts) {
      const section = document.get(account);
      const now = section === undefined ? '' : JSON.stringify(pickTokenFields(section));
      if ((this.seen.get(account) ?? '') === now) continue;
      this.seen.set(account, now);
      if (tell) for (const listener of this.listeners) listener(account);
    }
  }

  /**
   * Replaces the account's token fields with `fields` (token fields absent from `fields` are removed;
   * other keys in the section are kept), creating the section and the file as needed. The file is
   * written with mode 0600 whatever mode it had.
   *
   * @throws {@link TokenStoreError} if the existing file cannot be read or parsed (it is then left
   *   exactly as it is), or the new one cannot be written
   */
  write(account: string, fields: StoredTokenFields): Promise<void> {
    return this.change(account, (document) => {
      const section = document.get(account) ?? new Map<string, string>();
      for (const name of TOKEN_FIELD_NAMES) {
        const value = fields[name];
        if (value === undefined) section.delete(name);
        else section.set(name, value);
      }
      document.set(account, section);
      return true;
    });
  }

  /**
   * Removes the named token fields of the account, or its whole section when `fieldNames` is not
   * given. A section left empty is dropped. Nothing is written when there was nothing to remove.
   *
   * @throws {@link TokenStoreError} as for {@link FileTokenStore.write}
   */
  remove(account: string, fieldNames?: readonly (keyof StoredTokenFields)[]): Promise<void> {
    return this.change(account, (document) => {
      const section = document.get(account);
      if (section === undefined) return false;
      if (fieldNames === undefined) return document.delete(account);
      let changed = false;
      for (const name of fieldNames) changed = section.delete(name) || changed;
      if (section.size === 0) document.delete(account);
      return changed;
    });
  }

  /**
   * Resolves once no write or removal of this object is queued or running, including any queued
   * while waiting: what a stopping daemon awaits so that no token it was given is lost. Never rejects
   * (a failed write has already been reported to its caller).
   */
  async idle(): Promise<void> {
    let queue: Promise<unknown>;
    do {
      queue = this.queue;
      await queue;
    } while (queue !== this.queue);
  }

  /** Runs one read-modify-write of the file; `edit` returns whether it changed anything. */
  private change(account: string, edit: (document: IniDocument) => boolean): Promise<void> {
    const run = this.queue.then(async () => {
      assertAccountName(this.path, account);
      await this.ensureDirectory();
      try {
        await withLockFile(
          `${this.path}.lock`,
          async () => {
            const document = await this.load();
            if (!edit(document)) return;
            await this.save(document);
            const section = document.get(account);
            this.seen.set(
              account,
              section === undefined ? '' : JSON.stringify(pickTokenFields(section)),
            );
            // The directory exists now, so a watch that could not start before can.
            if (this.listeners.size > 0) this.startWatching();
          },
          this.lockOptions,
        );
      } catch (error) {
        if (error instanceof TokenStoreError) throw error;
        throw new TokenStoreError(this.path, `cannot update it (${describe(error)})`, error);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async load(): Promise<IniDocument> {
    let text: string;
    try {
      text = await readRegularFile(this.path);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return new Map();
      if (error instanceof TokenStoreError) throw error;
      throw new TokenStoreError(
        this.path,
        `cannot read it (${describe(error)}); check its owner and permissions`,
        error,
      );
    }
    try {
      return parseIni(text, this.path);
    } catch (error) {
      throw new TokenStoreError(
        this.path,
        `cannot parse it (${describe(error)}); it is left untouched and no tokens will be saved ` +
          'until it is repaired or moved away',
        error,
      );
    }
  }

  private async save(document: IniDocument): Promise<void> {
    let text: string;
    try {
      text = stringifyIni(document);
    } catch (error) {
      throw new TokenStoreError(
        this.path,
        `cannot write it back unchanged (${describe(error)})`,
        error,
      );
    }
    const target = await this.targetPath();
    // Under the lock, a temporary file there belongs to a writer killed mid-write. Tidying up is
    // worth less than the tokens being saved, so a failure to do it is no reason to stop.
    await removeAbandonedTemporaries(target).catch(() => 0);
    await writeFileAtomic(target, text, 0o600);
  }

  /** The file behind a symlinked store, so the rename replaces the file and keeps the user's link. */
  private async targetPath(): Promise<string> {
    try {
      return await realpath(this.path);
    } catch {
      return this.path;
    }
  }

  private async ensureDirectory(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new TokenStoreError(
        this.path,
        `cannot create its directory (${describe(error)})`,
        error,
      );
    }
  }
}

function pickTokenFields(section: ReadonlyMap<string, string>): StoredTokenFields {
  const fields: StoredTokenFields = {};
  for (const name of TOKEN_FIELD_NAMES) {
    const value = section.get(name);
    if (value !== undefined) fields[name] = value;
  }
  return fields;
}

function assertAccountName(path: string, account: string): void {
  // stringifyIni would refuse these too, but only after the lock and the read.
  if (account === '' || account === 'DEFAULT' || /[\r\n]/.test(account)) {
    throw new TokenStoreError(
      path,
      `cannot store tokens under the account name ${JSON.stringify(account)}`,
    );
  }
}

/**
 * Reads a file that must be a regular one. Opened non-blocking and checked first, so a FIFO or a
 * device at the store's path is refused at once instead of holding one of libuv's four threadpool
 * threads forever (a few such reads would stall every login and key derivation).
 */
async function readRegularFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) {
      throw new TokenStoreError(
        path,
        'cannot read it: it is not a regular file; move it away and the proxy starts a new store',
      );
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

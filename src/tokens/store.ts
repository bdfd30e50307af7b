/**
 * The token store: an INI file of per-account token sections in email-oauth2-proxy's format (the
 * same as its `--cache-store` file), separate from the configuration, which is never rewritten.
 *
 * Several processes share it (the daemon, a CLI authorising an account), so every change is a
 * read-modify-write of one account's section under a lock file, and the file is replaced atomically.
 */

import { constants } from 'node:fs';
import { mkdir, open, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { STORED_TOKEN_FIELDS, type StoredTokenFields } from '../config/types.js';
import { parseIni, stringifyIni, type IniDocument } from '../config/configparser.js';
import {
  isErrno,
  removeAbandonedTemporaries,
  withLockFile,
  writeFileAtomic,
  type LockOptions,
} from './atomic-write.js';

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
export class TokenStore {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** The file; its directory is created (mode 0700) on first write if missing. */
    readonly path: string,
    private readonly lockOptions: LockOptions = {},
  ) {}

  /**
   * The account's token fields, or undefined when the store (or the account's section) does not exist.
   *
   * @throws {@link TokenStoreError} if the file exists but cannot be read or parsed
   */
  async read(account: string): Promise<StoredTokenFields | undefined> {
    const section = (await this.load()).get(account);
    return section === undefined ? undefined : pickTokenFields(section);
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
   * @throws {@link TokenStoreError} as for {@link TokenStore.write}
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

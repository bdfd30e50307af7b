/**
 * Replacing a small secret file safely: readers see the old file or the new one, never half of
 * either, a crash leaves no partial file behind, and the result is owner-only whatever the old file
 * was. Plus the lock file that keeps processes' read-modify-write cycles from overlapping.
 */

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Writes `data` to `path` atomically: a temporary file in the same directory is created exclusively
 * with `mode`, written, flushed to disk, renamed over `path`, and the directory is flushed so the
 * rename itself survives a power cut. `path` ends up with exactly `mode`, because it is a new file.
 * On failure the temporary file is removed and `path` is untouched.
 */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const directory = dirname(path);
  const temporary = join(
    directory,
    `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMPORARY_SUFFIX}`,
  );
  // O_EXCL already refuses a symlink planted at the temporary name; O_NOFOLLOW says so outright.
  const handle = await open(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  try {
    try {
      // The umask can only remove bits; chmod makes the mode exact rather than "at most".
      await handle.chmod(mode);
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
}

const TEMPORARY_SUFFIX = '.tmp';

/** The secret file's directory lets other users put a file of their choosing at its path. */
export class UnsafeSecretLocationError extends Error {
  override readonly name = 'UnsafeSecretLocationError';
  constructor(
    readonly path: string,
    why: string,
  ) {
    super(`refusing the token store ${path}: ${why}; keep it in a directory only you can write to`);
  }
}

/**
 * Where a secret file may live: a directory other users cannot write to, or a sticky one (like
 * /tmp, where they cannot replace what is ours) holding the file already, as a regular file of
 * ours. Anywhere else another user could plant a symlink at its path (and the writer would replace
 * the file it points to) or a file of their own. Resolves to a warning for the sticky case, else
 * undefined; throws {@link UnsafeSecretLocationError} for the others.
 */
export async function checkSecretLocation(path: string): Promise<string | undefined> {
  const directory = dirname(path);
  const dir = await lstat(directory).catch(() => undefined);
  if (dir === undefined || (dir.mode & 0o022) === 0) return undefined;
  const mode = (dir.mode & 0o7777).toString(8);
  if ((dir.mode & 0o1000) === 0)
    throw new UnsafeSecretLocationError(
      path,
      `other users can write to ${directory} (mode ${mode})`,
    );
  const file = await lstat(path).catch(() => undefined);
  if (file === undefined)
    throw new UnsafeSecretLocationError(
      path,
      `other users can create files in ${directory} (mode ${mode}) and it does not exist yet`,
    );
  if (!file.isFile() || file.uid !== process.getuid?.())
    throw new UnsafeSecretLocationError(
      path,
      file.isSymbolicLink()
        ? `it is a symbolic link in ${directory}, where other users can create files`
        : `it belongs to user ${file.uid}, in ${directory}, where other users can create files`,
    );
  return `${path} is in ${directory}, where other users can create files (mode ${mode}); move it to a directory only you can write to`;
}

/**
 * Removes the temporary files of writes to `path` whose process was killed between creating and
 * renaming them: each holds a copy of secrets that nothing will ever read or clean up. Only safe
 * while holding the lock every writer of `path` takes, when no write of theirs can be under way.
 * Returns how many were removed.
 */
export async function removeAbandonedTemporaries(path: string): Promise<number> {
  const directory = dirname(path);
  const prefix = `.${basename(path)}.`;
  const abandoned = (await readdir(directory)).filter(
    (name) =>
      name.startsWith(prefix) &&
      name.endsWith(TEMPORARY_SUFFIX) &&
      /^[0-9a-f]{12}$/.test(name.slice(prefix.length, -TEMPORARY_SUFFIX.length)),
  );
  let removed = 0;
  for (const name of abandoned) {
    await unlink(join(directory, name)).then(
      () => (removed += 1),
      () => undefined,
    );
  }
  return removed;
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Options for {@link withLockFile}. */
export interface LockOptions {
  /** A lock file older than this is left over from a crashed process and is removed. Default 10 s. */
  readonly staleMs?: number;
  /** Give up waiting after this long; longer than `staleMs` so a crashed holder is outwaited. Default 30 s. */
  readonly timeoutMs?: number;
}

/** The lock stayed held by a live process for longer than the caller was willing to wait. */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
  constructor(readonly lockPath: string) {
    super(`Timed out waiting for lock file ${lockPath}`);
  }
}

/**
 * Runs `action` while holding `lockPath`, a file created with O_EXCL so only one process at a time
 * can hold it. Waiters poll with a little jitter. The lock file holds the holder's pid and host,
 * for a human wondering who holds it.
 *
 * @throws {@link LockTimeoutError} when the lock cannot be taken within `timeoutMs`
 */
export async function withLockFile<T>(
  lockPath: string,
  action: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const staleMs = options.staleMs ?? 10_000;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const ownInode = await acquire(lockPath, staleMs, deadline);
  try {
    return await action();
  } finally {
    await release(lockPath, ownInode);
  }
}

async function acquire(lockPath: string, staleMs: number, deadline: number): Promise<number> {
  for (;;) {
    const handle = await open(lockPath, 'wx', 0o600).catch((error: unknown) => {
      if (isErrno(error, 'EEXIST')) return undefined;
      throw error;
    });
    if (handle) {
      try {
        await handle.writeFile(`${process.pid}@${hostname()}\n`, 'utf8');
        return (await handle.stat()).ino;
      } catch (error) {
        await unlink(lockPath).catch(() => undefined);
        throw error;
      } finally {
        await handle.close();
      }
    }
    await removeIfStale(lockPath, staleMs);
    if (Date.now() >= deadline) throw new LockTimeoutError(lockPath);
    await sleep(10 + Math.random() * 20);
  }
}

/**
 * Removes a lock file not touched for `staleMs`. It is renamed away first, and the inode compared,
 * so that when two waiters judge the same lock stale, the slower one cannot delete the lock the
 * faster one has just created in its place.
 */
async function removeIfStale(lockPath: string, staleMs: number): Promise<void> {
  let judged;
  try {
    judged = await stat(lockPath);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  if (Date.now() - judged.mtimeMs < staleMs) return;

  const grave = `${lockPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(lockPath, grave);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const taken = await stat(grave);
  if (taken.ino !== judged.ino || taken.dev !== judged.dev) {
    // We took a live lock that replaced the stale one; put it back unless someone is already there.
    await link(grave, lockPath).catch(() => undefined);
  }
  await unlink(grave).catch(() => undefined);
}

async function release(lockPath: string, ownInode: number): Promise<void> {
  try {
    // If our lock was judged stale and replaced, the file there now is someone else's.
    if ((await stat(lockPath)).ino === ownInode) await unlink(lockPath);
  } catch {
    // Best effort: throwing here would hide the action's own outcome, and a lock file left
    // behind goes stale and is removed by the next writer.
  }
}

/** True when `error` is a Node system error with this `code`. */
export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

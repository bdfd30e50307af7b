import { lstat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The file at the control-socket path is not one we may talk to: another user's socket (planted in
 * a directory others can write to, to collect sign-in codes and passwords), not a socket at all,
 * or one in a directory where others could swap it. Also what a user sees who may not open the
 * owner's socket (`status` run by someone else).
 */
export class UntrustedControlSocketError extends Error {
  constructor(
    readonly path: string,
    why: string,
  ) {
    super(`refusing the control socket ${path}: ${why}`);
    this.name = 'UntrustedControlSocketError';
  }
}

/** The users whose sockets and directories we trust: ourselves and root. */
function trusted(uid: number): boolean {
  return uid === 0 || uid === process.getuid?.();
}

/**
 * Checks, before a byte is sent or a socket replaced, that what sits at `path` is a socket owned
 * by us (or root) in a directory only we (or root) can change; resolves to false when there is
 * nothing at `path`, true when it is ours. Throws {@link UntrustedControlSocketError} otherwise.
 */
export async function ownControlSocket(path: string): Promise<boolean> {
  const directory = dirname(path);
  const dir = await lstat(directory).catch(() => undefined);
  if (dir !== undefined) {
    if (!trusted(dir.uid))
      throw new UntrustedControlSocketError(path, `its directory belongs to user ${dir.uid}`);
    const othersMayWrite = (dir.mode & 0o022) !== 0 && (dir.mode & 0o1000) === 0;
    if (othersMayWrite)
      throw new UntrustedControlSocketError(
        path,
        `other users can write to ${directory} (mode ${(dir.mode & 0o7777).toString(8)}) and could replace it; run: chmod 700 ${directory}`,
      );
  }
  const info = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    if (err.code === 'EACCES')
      throw new UntrustedControlSocketError(path, 'permission denied on the control socket');
    throw err;
  });
  if (info === undefined) return false;
  if (!info.isSocket()) throw new UntrustedControlSocketError(path, 'it is not a socket');
  if (!trusted(info.uid))
    throw new UntrustedControlSocketError(
      path,
      `permission denied: it belongs to user ${info.uid}, not to you (a foreign socket, or another user's proxy)`,
    );
  return true;
}

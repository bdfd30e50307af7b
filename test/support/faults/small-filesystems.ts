/**
 * Filesystems that refuse writes, for the token store: a tmpfs remounted read-only, and a tiny
 * tmpfs filled to the last byte. Needs root (or CAP_SYS_ADMIN), which the test machine has;
 * file permissions alone cannot stop root, a mount can.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A tmpfs mounted by a test, unmounted by {@link TestFilesystem.unmount}. */
export class TestFilesystem {
  private constructor(readonly dir: string) {}

  /** Mounts a fresh tmpfs of `sizeKiB` at `dir` (created if missing). */
  static async mount(dir: string, sizeKiB: number): Promise<TestFilesystem> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir]);
    return new TestFilesystem(dir);
  }

  readOnly(): Promise<void> {
    return this.remount('ro');
  }

  writable(): Promise<void> {
    return this.remount('rw');
  }

  /** Writes a filler file until the filesystem has no byte left; {@link TestFilesystem.makeRoom} removes it. */
  async fillUp(): Promise<void> {
    const filler = await open(this.fillerPath, 'w');
    const block = Buffer.alloc(1024, 0x2e);
    try {
      for (;;) await filler.write(block);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      await filler.close().catch(() => undefined);
    }
    // What a 1 KiB block did not fill, single bytes do.
    const tail = await open(this.fillerPath, 'a');
    try {
      for (;;) await tail.write(Buffer.of(0x2e));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      await tail.close().catch(() => undefined);
    }
  }

  makeRoom(): Promise<void> {
    return rm(this.fillerPath, { force: true });
  }

  /** Unmounts (lazily, so a process still holding a file there cannot keep it busy). */
  async unmount(): Promise<void> {
    await run('umount', ['-l', this.dir]).catch(() => undefined);
  }

  private get fillerPath(): string {
    return join(this.dir, 'filler');
  }

  private async remount(mode: 'ro' | 'rw'): Promise<void> {
    await run('mount', ['-o', `remount,${mode}`, this.dir]);
  }
}

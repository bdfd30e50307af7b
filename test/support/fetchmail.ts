import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runClient, type CommandResult } from './clients.js';

/**
 * fetchmail 6.4 as a user runs it: its own FETCHMAILHOME under `home`, rc files (mode 0600, as
 * fetchmail demands) polling the proxy's IMAP port with a password login, and an mda that writes
 * each message to a file in `delivered`.
 */
export async function fetchmailHome(home: string, imapPort: number) {
  const delivered = join(home, 'delivered');
  await mkdir(delivered, { recursive: true });
  const mda = join(home, 'deliver.sh');
  await writeFile(mda, '#!/bin/sh\nfile=$(mktemp "$1/msg.XXXXXX") && cat > "$file"\n', {
    mode: 0o755,
  });
  return {
    delivered,
    /**
     * An rc file for `user` with `password`. `keep` without `fetchall`: fetchmail asks for UNSEEN
     * mail, so a second run finds nothing new (with `fetchall` every run fetches every kept message
     * again and always exits 0).
     */
    async rc(name: string, user: string, password: string): Promise<string> {
      const file = join(home, name);
      await writeFile(
        file,
        `poll 127.0.0.1 protocol IMAP port ${imapPort} auth password user "${user}" password "${password}" ` +
          `sslproto '' keep mda "${mda} ${delivered}"\n`,
      );
      await chmod(file, 0o600);
      return file;
    },
    run(file: string, flags: readonly string[] = [], timeoutMs = 30_000): Promise<CommandResult> {
      // As root, fetchmail's lock is /var/run/fetchmail.pid whatever FETCHMAILHOME says: two test
      // files (or two engineers) polling at once then get exit 8, "another fetchmail is running".
      const pidfile = ['--pidfile', join(home, 'fetchmail.pid')];
      return runClient('fetchmail', [...flags, ...pidfile, '-f', file, '--nodetach'], {
        env: { FETCHMAILHOME: home, LC_ALL: 'C' },
        timeoutMs,
      });
    },
  };
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/**
 * Runs `argv` on a pseudo-terminal, as a user's shell would, using util-linux `script`.
 *
 * `script` starts the command through `$SHELL -c`. The shell is pinned to /bin/sh and told to
 * `exec`, so the command is the only process on the terminal: otherwise a Ctrl-C typed there
 * also reaches a shell that, depending on which shell it is, dies of it and turns the command's
 * own clean exit into `script`'s 130.
 */
export function spawnInTerminal(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ChildProcessWithoutNullStreams {
  const command = `exec ${argv.map(shellQuote).join(' ')}`;
  return spawn('script', ['-qfec', command, '/dev/null'], {
    env: { ...env, SHELL: '/bin/sh' },
    stdio: 'pipe',
  });
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

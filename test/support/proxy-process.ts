import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnInTerminal } from './terminal.js';

/** The built CLI: the tests run the proxy exactly as a user's shell would. */
export const PROXY_BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface ProxyProcessOptions {
  /** Working directory holding config.ini and tokens.ini. */
  readonly dir: string;
  readonly config: string;
  readonly args?: readonly string[];
  /** Run under a pseudo-terminal (util-linux `script`), as a user in a terminal would. */
  readonly tty?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  /** Pass no `--cache-store`: the config's `cache_store` (or the default) names the store. */
  readonly storeFromConfig?: boolean;
  /** The program to run instead of the built CLI, e.g. an installed `/usr/bin/oauth2-mail-proxy`. */
  readonly program?: string;
}

/** A running proxy process and everything it printed. */
export class ProxyProcess {
  /** stdout and stderr as they arrived (merged under a pseudo-terminal). */
  output = '';
  private readonly exited: Promise<number | null>;
  private waiters = new Set<() => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly configFile: string,
    readonly tokenStore: string,
    private readonly tty: boolean,
  ) {
    const collect = (chunk: Buffer): void => {
      this.output += chunk.toString('utf8');
      for (const wake of this.waiters) wake();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        for (const wake of this.waiters) wake();
        resolve(code);
      }),
    );
  }

  static async start(options: ProxyProcessOptions): Promise<ProxyProcess> {
    const configFile = join(options.dir, 'config.ini');
    const tokenStore = join(options.dir, 'tokens.ini');
    await writeFile(configFile, options.config);
    const [file, ...argv] = [
      ...(options.program ? [options.program] : [process.execPath, PROXY_BIN]),
      '--config-file',
      configFile,
      ...(options.storeFromConfig === true ? [] : ['--cache-store', tokenStore]),
      ...(options.args ?? []),
    ];
    const env = {
      ...process.env,
      // The default state folder (control socket, and the store unless the config names one).
      ...(options.storeFromConfig === true && { XDG_STATE_HOME: options.dir }),
      ...options.env,
    };
    const child = options.tty
      ? spawnInTerminal([file!, ...argv], env)
      : spawn(file!, argv, { env, stdio: 'pipe' });
    return new ProxyProcess(child, configFile, tokenStore, options.tty === true);
  }

  /**
   * Runs another CLI command (`authorize`, `status`) against the same files, with piped stdin, or
   * under a pseudo-terminal with `tty`.
   */
  static command(
    args: readonly string[],
    files: { configFile: string; tokenStore: string },
    options: { tty?: boolean } = {},
  ): ProxyProcess {
    const argv = [
      PROXY_BIN,
      ...args,
      '--config-file',
      files.configFile,
      '--cache-store',
      files.tokenStore,
    ];
    const child = options.tty
      ? spawnInTerminal([process.execPath, ...argv])
      : spawn(process.execPath, argv, { stdio: 'pipe' });
    return new ProxyProcess(child, files.configFile, files.tokenStore, options.tty === true);
  }

  /** Runs another CLI command against this daemon's files. */
  cli(args: readonly string[], options: { tty?: boolean } = {}): ProxyProcess {
    return ProxyProcess.command(args, this, options);
  }

  /** Waits until the output matches, returning the match. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.output);
      if (match) return match;
      if (this.child.exitCode !== null)
        throw new Error(
          `proxy exited (${this.child.exitCode}) before ${pattern}; output:\n${this.output}`,
        );
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${pattern}; output:\n${this.output}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 200);
        this.waiters.add(wake);
      });
    }
  }

  /** Waits for the daemon's readiness log line. */
  ready(): Promise<RegExpMatchArray> {
    return this.waitFor(/"event":"ready"|oauth2-mail-proxy ready/);
  }

  /** JSON log events (when not under a terminal). */
  events(): Array<Record<string, unknown>> {
    return this.output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Types into the process's stdin (its terminal, under `tty`). */
  type(text: string): void {
    this.child.stdin?.write(text);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null) {
      // Under `script` the proxy is a grandchild; Ctrl-C on its terminal is what a user would do.
      if (this.tty) this.type('\x03');
      else this.child.kill(signal);
    }
    return this.exited;
  }

  exit(): Promise<number | null> {
    return this.exited;
  }
}

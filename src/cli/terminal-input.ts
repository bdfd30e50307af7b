import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/**
 * Line input for the CLI, from a terminal or a pipe (`echo URL | oauth2-mail-proxy authorize ...`).
 * One reader per process: readline buffers ahead, so two readers on stdin would lose lines.
 */
export class TerminalInput {
  private readonly lines: AsyncIterator<string>;
  private readonly rl: readline.Interface;

  constructor(
    private readonly input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => void },
    private readonly output: Writable,
  ) {
    this.rl = readline.createInterface({ input, terminal: false });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  /** Prints `prompt` and returns the next line, or undefined at end of input. */
  async line(prompt: string): Promise<string | undefined> {
    this.output.write(prompt);
    const next = await this.lines.next();
    return next.done ? undefined : next.value;
  }

  /**
   * Like `line`, without echoing what is typed when the input is a terminal (for passwords).
   * From a pipe the line is read as it is.
   */
  async secret(prompt: string): Promise<string | undefined> {
    if (!this.input.isTTY || !this.input.setRawMode) return this.line(prompt);
    // Echo goes off before the prompt appears, so a password pasted the moment it shows is not echoed.
    this.rl.pause();
    this.input.setRawMode(true);
    this.output.write(prompt);
    try {
      return await new Promise<string | undefined>((resolve) => {
        let typed = '';
        const onData = (chunk: Buffer): void => {
          for (const char of chunk.toString('utf8')) {
            if (char === '\r' || char === '\n') return finish(typed);
            if (char === '\u0003' || char === '\u0004') return finish(undefined);
            if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
            else typed += char;
          }
        };
        const finish = (value: string | undefined): void => {
          this.input.off('data', onData);
          this.output.write('\n');
          resolve(value);
        };
        this.input.on('data', onData);
        this.input.resume();
      });
    } finally {
      this.input.setRawMode(false);
      this.rl.resume();
    }
  }

  close(): void {
    this.rl.close();
  }
}

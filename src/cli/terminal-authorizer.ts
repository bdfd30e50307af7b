import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { OAuthError } from '../oauth/index.js';
import type { PendingView } from '../tokens/pending-authorizations.js';
import type { TokenManager } from '../tokens/token-manager.js';

/**
 * The interactive paste flow for a proxy started in a terminal with `--external-auth`: each
 * account that needs authorising gets its sign-in link printed and a prompt for the address the
 * browser ends on. One account at a time; a bad paste gets an explanation and another prompt.
 */
export class TerminalAuthorizer {
  private readonly queue: PendingView[] = [];
  private readonly lines: readline.Interface;
  private current: PendingView | undefined;

  constructor(
    private readonly tokens: TokenManager,
    input: Readable,
    private readonly output: Writable,
  ) {
    this.lines = readline.createInterface({ input, output, terminal: false });
    this.lines.on('line', (line) => void this.onLine(line));
    tokens.pending.on('pending', (pending) => {
      this.queue.push(pending);
      if (!this.current) this.next();
    });
  }

  close(): void {
    this.lines.close();
  }

  private next(): void {
    this.current = this.queue.shift();
    if (!this.current) return;
    this.say(
      `\nPlease visit the following URL to authenticate account ${this.current.loginName}: ${this.current.url}\n` +
        'Sign in, then paste the full address your browser ends on (it may show an error page; copy the address anyway):',
    );
    this.prompt();
  }

  private async onLine(line: string): Promise<void> {
    const pending = this.current;
    if (!pending || line.trim() === '') {
      if (pending) this.prompt();
      return;
    }
    try {
      await this.tokens.pending.complete(pending.key, line);
      this.say(`Authorised ${pending.loginName}; the waiting login continues.`);
      this.next();
    } catch (err) {
      if (err instanceof OAuthError) {
        this.say(`That did not work: ${err.message}. ${err.hint}`);
        if (err.kind === 'config') {
          this.next();
          return;
        }
      } else {
        this.say(`That did not work: ${(err as Error).message}`);
        if (!this.tokens.pending.get(pending.key)) {
          this.next();
          return;
        }
      }
      this.say(`Paste the address again for ${pending.loginName}:`);
      this.prompt();
    }
  }

  private prompt(): void {
    this.output.write('> ');
  }

  private say(text: string): void {
    this.output.write(`${text}\n`);
  }
}

import type { LineReader } from '../line-reader.js';

/** One argument of a pre-authentication IMAP command. */
export type ImapToken =
  | { readonly type: 'atom'; readonly value: string }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'open' }
  | { readonly type: 'close' };

export interface ImapCommand {
  readonly tag: string;
  /** Upper-cased. */
  readonly verb: string;
  readonly args: readonly ImapToken[];
}

/** The command could not be parsed; `tag` is set when it was readable, for a tagged `BAD`. */
export class ImapSyntaxError extends Error {
  constructor(
    message: string,
    readonly tag: string | undefined,
  ) {
    super(message);
    this.name = 'ImapSyntaxError';
  }
}

/**
 * A literal larger than the credential limit. For `{n}` the client waits for our go-ahead, so a
 * tagged refusal is enough; for `{n+}` the bytes are already coming and the connection must end.
 */
export class LiteralTooLargeError extends Error {
  constructor(
    readonly tag: string,
    readonly nonSynchronizing: boolean,
    readonly limit: number,
  ) {
    super(`literal larger than ${limit} bytes`);
    this.name = 'LiteralTooLargeError';
  }
}

export interface CommandReaderOptions {
  readonly maxLiteralBytes: number;
  /**
   * What one command may take in, its lines and literals together. Without it, a command could
   * chain literals (`{100+}` ... `{100+}` ...) and make us hold any amount of them.
   */
  readonly maxCommandBytes: number;
  /** Sends the `+` continuation a synchronizing literal `{n}` waits for. */
  readonly continueLiteral: () => void;
}

const LITERAL_AT_END = /\{(\d{1,10})(\+?)\}$/;
/**
 * RFC 9051 tag: ASTRING-CHARs except "+", so printable ASCII without ( ) { SP % * " \ +. Control
 * characters and 8-bit bytes are not tag characters: such a line gets an untagged BAD, and the
 * client's bytes are never echoed back as a tag.
 */
const TAG = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+$/;
const ATOM_END = /[\s()"{]/;

/**
 * Reads one command: a line, plus any literals it announces and the line pieces after them.
 * Returns `null` when the client has gone. Literal sizes are checked before anything is read,
 * against both the literal limit and what is left of the command's.
 */
export async function readImapCommand(
  reader: LineReader,
  options: CommandReaderOptions,
): Promise<ImapCommand | null> {
  let line = await reader.readLine();
  if (line === null) return null;
  let taken = Buffer.byteLength(line) + 2;

  const head = /^(\S+) ([A-Za-z]+)(?: (.*))?$/s.exec(line);
  const tag = head?.[1];
  if (!head || tag === undefined || !TAG.test(tag)) {
    const guessedTag = /^(\S+)/.exec(line)?.[1];
    throw new ImapSyntaxError(
      'Expected: tag SP command',
      guessedTag && TAG.test(guessedTag) ? guessedTag : undefined,
    );
  }
  const verb = (head[2] ?? '').toUpperCase();
  line = head[3] ?? '';

  const args: ImapToken[] = [];
  for (;;) {
    const literal = LITERAL_AT_END.exec(line);
    const text = literal ? line.slice(0, literal.index) : line;
    tokenize(text, args, tag);
    if (!literal) return { tag, verb, args };

    const size = Number(literal[1]);
    const nonSynchronizing = literal[2] === '+';
    const room = Math.max(0, Math.min(options.maxLiteralBytes, options.maxCommandBytes - taken));
    if (size > room) throw new LiteralTooLargeError(tag, nonSynchronizing, room);
    if (!nonSynchronizing) options.continueLiteral();
    const bytes = await reader.readBytes(size);
    if (bytes === null) return null;
    args.push({ type: 'string', value: bytes.toString('utf8') });

    const rest = await reader.readLine();
    if (rest === null) return null;
    taken += size + Buffer.byteLength(rest) + 2;
    line = rest;
  }
}

function tokenize(text: string, into: ImapToken[], tag: string): void {
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === ' ') {
      i += 1;
    } else if (ch === '(') {
      into.push({ type: 'open' });
      i += 1;
    } else if (ch === ')') {
      into.push({ type: 'close' });
      i += 1;
    } else if (ch === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const c = text[i];
        if (c === undefined) throw new ImapSyntaxError('Unterminated quoted string', tag);
        if (c === '"') break;
        if (c === '\\') {
          const escaped = text[i + 1];
          if (escaped !== '\\' && escaped !== '"')
            throw new ImapSyntaxError('Only \\\\ and \\" may be escaped in a quoted string', tag);
          value += escaped;
          i += 2;
        } else {
          value += c;
          i += 1;
        }
      }
      into.push({ type: 'string', value });
      i += 1;
    } else {
      const rest = text.slice(i);
      const end = rest.search(ATOM_END);
      const atom = end === -1 ? rest : rest.slice(0, end);
      if (atom === '') throw new ImapSyntaxError(`Unexpected character ${JSON.stringify(ch)}`, tag);
      into.push({ type: 'atom', value: atom });
      i += atom.length;
    }
  }
}

/** The text of an astring argument (atom or string), or undefined for anything else. */
export function astring(token: ImapToken | undefined): string | undefined {
  return token && (token.type === 'atom' || token.type === 'string') ? token.value : undefined;
}

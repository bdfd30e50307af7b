/**
 * What keeps a log line one line, and its secrets out: every string a log line carries is
 * escaped, so a user name, a server's reply or a provider's description cannot start a line of
 * its own or drive the terminal (the JSON line escapes C0 controls, but pino-pretty decodes them
 * again, and neither touches DEL, C1 controls or Unicode's line separators).
 */

/** C0 and C1 controls, DEL, Unicode's line and paragraph separators, bidirectional overrides. */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with each unsafe character written as its escape (`\r`, `\x1b`, `\u2028`). */
export function escapeControlCharacters(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const named = NAMED[char];
    if (named !== undefined) return named;
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * A serialised JSON log line with every string in it (keys included) escaped. A line that holds
 * no backslash and no raw unsafe character has nothing to escape and is returned as it is: JSON
 * writes every C0 control as a backslash escape, so only those lines are parsed again.
 */
export function escapeLogLine(line: string): string {
  if (!/[\\\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(line)) return line;
  const end = line.endsWith('\n') ? '\n' : '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return escapeControlCharacters(line.slice(0, line.length - end.length)) + end;
  }
  return JSON.stringify(escapeStrings(parsed)) + end;
}

function escapeStrings(value: unknown): unknown {
  if (typeof value === 'string') return escapeControlCharacters(value);
  if (Array.isArray(value)) return value.map(escapeStrings);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        escapeControlCharacters(key),
        escapeStrings(inner),
      ]),
    );
  }
  return value;
}

/**
 * What a log shows of a field named `code`: an error code (`invalid_grant`, `http_503`,
 * `ECONNREFUSED`, `OAUTH_TIMEOUT`, a number), which an operator needs to tell one failure from
 * another, is shown; anything else under that name (an authorization code, say) is redacted.
 */
export function shownCode(value: unknown): unknown {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^(?:[a-z][a-z0-9_]{0,39}|[A-Z][A-Z0-9_]{0,39})$/.test(value)
    ? value
    : REDACTED;
}

export const REDACTED = '[redacted]';

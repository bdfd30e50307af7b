/**
 * The one error type configuration problems are reported with. Loading stops at the first problem,
 * so the user sees one precise message at a time instead of a cascade.
 */

/** Where a configuration problem is and what it is. */
export interface ConfigProblem {
  /** The file as the user named it (not resolved), so the message matches what they typed. */
  readonly file: string;
  /** 1-based line number, known for syntax problems only (validation works on parsed values). */
  readonly line?: number | undefined;
  /** The section name as written, without brackets. */
  readonly section?: string | undefined;
  /** The key, lowercased as configparser reads it. */
  readonly key?: string | undefined;
  /** What is wrong and what to do about it, without the location prefix. */
  readonly problem: string;
  /** The underlying error, e.g. the file system error for an unreadable file. */
  readonly cause?: unknown;
}

/**
 * A problem in the configuration file (or reading it). `message` is a single line:
 * `my.config: section [IMAP-1993], key server_port: "99x" is not a port number (1-65535)`;
 * syntax errors carry the line number: `my.config:12: section [IMAP-1993], key server_port: ...`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Stable code for callers that branch on the error kind (e.g. exit codes in the CLI). */
  readonly code = 'ERR_CONFIG';
  readonly file: string;
  readonly line: number | undefined;
  readonly section: string | undefined;
  readonly key: string | undefined;
  readonly problem: string;

  constructor(details: ConfigProblem) {
    super(
      formatConfigProblem(details),
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.file = details.file;
    this.line = details.line;
    this.section = details.section;
    this.key = details.key;
    this.problem = details.problem;
  }
}

/** Builds the one-line message: `file[:line]: [section [S][, key K]: ]problem`. */
export function formatConfigProblem(details: ConfigProblem): string {
  const location = details.line === undefined ? details.file : `${details.file}:${details.line}`;
  const context = [
    details.section === undefined ? undefined : `section [${details.section}]`,
    details.key === undefined ? undefined : `key ${details.key}`,
  ]
    .filter((part): part is string => part !== undefined)
    .join(', ');
  // Newlines would break the one-line promise (section names and values can hold them).
  return [location, context, details.problem]
    .filter((part) => part !== '')
    .join(': ')
    .replace(/\r\n|\r|\n/g, '\\n');
}

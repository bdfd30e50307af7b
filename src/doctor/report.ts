/**
 * What `oauth2-mail-proxy check` prints: one line per check with its mark, the explanation
 * indented under it, and a summary. Only `fail` makes the command exit non-zero; a warning is
 * something worth knowing that does not stop mail (an opaque token whose claims cannot be read).
 */

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

/** One check's outcome. */
export interface CheckResult {
  readonly status: CheckStatus;
  /** What was checked and what came of it, on one line. */
  readonly title: string;
  /** Plain-words explanation and what to do, one sentence or command per line. */
  readonly details?: readonly string[];
}

export type Marks = Readonly<Record<CheckStatus, string>>;

export const UNICODE_MARKS: Marks = { pass: '✓', fail: '✗', warn: '!', skip: '-' };

/**
 * Marks for logs, cron mail and terminals without UTF-8: the same width, so columns line up,
 * and words a script can grep for.
 */
export const ASCII_MARKS: Marks = {
  pass: '[ OK ]',
  fail: '[FAIL]',
  warn: '[WARN]',
  skip: '[SKIP]',
};

/**
 * ✓/✗ on a terminal whose locale is UTF-8 (or unset, as on most desktops); ASCII words when the
 * output goes to a pipe or file (monitoring, cron mail, journald), where a reader may not decode
 * UTF-8 and `grep FAIL` is handier than a symbol.
 */
export function marksFor(
  output: { readonly isTTY?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Marks {
  if (output.isTTY !== true) return ASCII_MARKS;
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  if (locale !== '' && !/utf-?8/i.test(locale)) return ASCII_MARKS;
  return env.TERM === 'dumb' ? ASCII_MARKS : UNICODE_MARKS;
}

/** The check's line and its indented details, newline-terminated. */
export function formatResult(result: CheckResult, marks: Marks): string {
  const indent = ' '.repeat(marks.pass.length + 1 + 2);
  const lines = [
    `${marks[result.status]} ${result.title}`,
    ...(result.details ?? []).map((line) => `${indent}${line}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The closing line: how many checks passed, and which failed. */
export function summarise(results: readonly CheckResult[]): string {
  const count = (status: CheckStatus): number =>
    results.filter((result) => result.status === status).length;
  const failed = results.filter((result) => result.status === 'fail');
  const warned = count('warn');
  const notes = [
    ...(warned > 0 ? [`${warned} warning${warned === 1 ? '' : 's'}`] : []),
    ...(count('skip') > 0 ? [`${count('skip')} not run`] : []),
  ];
  const tail = notes.length > 0 ? ` (${notes.join(', ')})` : '';
  if (failed.length === 0) return `All ${count('pass')} checks passed${tail}.\n`;
  return `${failed.length} of ${results.length - count('skip')} checks failed${tail}: ${failed.map((result) => shortTitle(result.title)).join('; ')}.\n`;
}

/** 0 when nothing failed, 1 otherwise: what scripts and monitoring act on. */
export function exitCodeFor(results: readonly CheckResult[]): number {
  return results.some((result) => result.status === 'fail') ? 1 : 0;
}

/** `IMAP localhost:993: the server rejected the token` -> `IMAP localhost:993`, for the summary. */
function shortTitle(title: string): string {
  const colon = title.search(/: /);
  return colon > 0 ? title.slice(0, colon) : title;
}

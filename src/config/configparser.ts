/**
 * An INI reader that reads exactly what Python's `configparser.ConfigParser(interpolation=None)`
 * reads (strict mode, the defaults email-oauth2-proxy uses), so users' existing files mean the same
 * thing here. The algorithm follows CPython's `RawConfigParser._read` step by step; where this file
 * looks odd (blank lines inside values, indentation compared with the *key's* indentation, comments
 * skipped in the middle of a value) it is because configparser does the same.
 *
 * The npm `ini` package is not used: it nests dotted section names and cuts values at `;`/`#`.
 */

import { ConfigError } from './errors.js';

/** Section name as written → lowercased key → value. Map order is file order. */
export type IniDocument = Map<string, Map<string, string>>;

/** configparser's `default_section`: its keys are inherited by every other section. */
const DEFAULT_SECTION = 'DEFAULT';

// Python's str.isspace() set, which is what str.strip() and `\s` in `re` use. JavaScript's `\s`
// differs (it includes U+FEFF, lacks U+001C-U+001F and U+0085), and fidelity is the point here.
const PY_SPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]+`);
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]+$`);
const FIRST_NON_SPACE = new RegExp(`[^${PY_SPACE}]`);
// Both patterns use the `s` flag: Python's `.` matches U+2028/U+2029, JavaScript's only with `s`
// (lines never hold `\n`, so the flag changes nothing else).
/** configparser.SECTCRE: `[` then greedy `.+` then `]`, anchored at the start only. */
const SECTION_HEADER = /^\[(.+)\]/s;
/** configparser.OPTCRE with delimiters `=` and `:`: the lazy key makes the first delimiter win. */
const OPTION_LINE = new RegExp(`^(.*?)[${PY_SPACE}]*([=:])[${PY_SPACE}]*(.*)$`, 's');
const COMMENT_PREFIXES = ['#', ';'] as const;

const BOOLEAN_STATES: ReadonlyMap<string, boolean> = new Map([
  ['1', true],
  ['yes', true],
  ['true', true],
  ['on', true],
  ['0', false],
  ['no', false],
  ['false', false],
  ['off', false],
]);

function pyStrip(text: string): string {
  return pyRstrip(text.replace(LEADING_SPACE, ''));
}

function pyRstrip(text: string): string {
  return text.replace(TRAILING_SPACE, '');
}

/**
 * Reads INI text the way configparser (interpolation off, strict) does.
 *
 * - `[DEFAULT]` keys are inherited by every section (the section's own keys come first, then
 *   inherited ones) and `DEFAULT` itself is not listed.
 * - Keys are lowercased; section names are kept exactly as written (dots and case included).
 * - `=` or `:` separate key and value, whichever comes first; spaces around both are stripped.
 * - Only whole-line `#`/`;` comments exist; `#` and `;` inside a value are part of it.
 * - A line indented deeper than its key continues the value (joined with `\n`); blank lines
 *   between continuation lines are kept, trailing ones dropped.
 *
 * A leading UTF-8 byte order mark is ignored (configparser would reject the file; editors on
 * Windows add one).
 *
 * @param source - the file name to put in error messages
 * @throws ConfigError on a duplicate section, a duplicate key within a section, a key before any
 *   section header, or a line that is neither header, `key = value`, continuation nor comment
 */
export function parseIni(text: string, source: string): IniDocument {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const sections = new Map<string, Map<string, string[]>>();
  const defaults = new Map<string, string[]>();
  let current: Map<string, string[]> | undefined;
  let sectionName: string | undefined;
  let key: string | undefined;
  let keyIndent = 0;

  function fail(line: number, problem: string, withKey?: string): never {
    throw new ConfigError({ file: source, line, section: sectionName, key: withKey, problem });
  }

  for (const [index, line] of lines.entries()) {
    const lineNumber = index + 1;
    const stripped = pyStrip(line);
    const isComment = COMMENT_PREFIXES.some((prefix) => stripped.startsWith(prefix));
    if (stripped === '' || isComment) {
      // A blank line may sit between continuation lines, so remember it; a comment line is skipped
      // without ending the value (configparser's empty_lines_in_values=True).
      if (!isComment && current !== undefined && key) current.get(key)?.push('');
      continue;
    }

    const indent = line.search(FIRST_NON_SPACE);
    if (current !== undefined && key && indent > keyIndent) {
      current.get(key)?.push(stripped);
      continue;
    }
    keyIndent = indent;

    const header = SECTION_HEADER.exec(stripped);
    if (header) {
      sectionName = header[1] ?? '';
      key = undefined;
      if (sectionName === DEFAULT_SECTION) {
        current = defaults;
      } else if (sections.has(sectionName)) {
        fail(lineNumber, 'section defined twice; merge the two sections into one');
      } else {
        current = new Map();
        sections.set(sectionName, current);
      }
      continue;
    }

    if (current === undefined) {
      fail(
        lineNumber,
        'text before the first [section] header; start the file with a header such as [IMAP-1993]',
      );
    }
    const option = OPTION_LINE.exec(stripped);
    if (!option) {
      fail(
        lineNumber,
        'line is not "key = value", a [section] header, an indented continuation or a # comment; ' +
          'add "=" between key and value, indent it to continue the value above, or start it with #',
      );
    }
    const [, rawKey = '', delimiter = '=', rawValue = ''] = option;
    if (rawKey === '')
      fail(lineNumber, `nothing before the "${delimiter}"; write the key name first`);
    const newKey = pyRstrip(rawKey).toLowerCase();
    if (current.has(newKey))
      fail(lineNumber, 'key set twice in this section; keep only one of them', newKey);
    key = newKey;
    current.set(newKey, [pyStrip(rawValue)]);
  }

  const joinedDefaults = joinValues(defaults);
  const document: IniDocument = new Map();
  for (const [name, values] of sections) {
    const section = joinValues(values);
    for (const [defaultKey, value] of joinedDefaults) {
      if (!section.has(defaultKey)) section.set(defaultKey, value);
    }
    document.set(name, section);
  }
  return document;
}

/** configparser's `_join_multiline_values`: lines joined with `\n`, trailing blank lines dropped. */
function joinValues(values: Map<string, string[]>): Map<string, string> {
  const joined = new Map<string, string>();
  for (const [key, lines] of values) joined.set(key, pyRstrip(lines.join('\n')));
  return joined;
}

/**
 * configparser's boolean reading (`getboolean`): `1`/`yes`/`true`/`on` and `0`/`no`/`false`/`off`,
 * any case. Surrounding spaces are not accepted because parsed values never have any.
 *
 * @returns the boolean, or undefined when the text is not one of those words
 */
export function parseBoolean(value: string): boolean | undefined {
  return BOOLEAN_STATES.get(value.toLowerCase());
}

/**
 * Writes a document that both configparser and {@link parseIni} read back identically: one
 * `key = value` line per entry, a blank line after each section.
 *
 * Only what that format can carry is accepted; anything else throws rather than being silently
 * changed on the way back in (a token written wrongly is a token lost).
 *
 * @throws Error when a section is named `DEFAULT` or empty or holds a line break, when a key is
 *   empty, not lowercase, has surrounding spaces, holds `=`, `:` or a line break, or starts with
 *   `[`, `#` or `;`, or when a value holds a line break or has surrounding spaces
 */
export function stringifyIni(doc: IniDocument): string {
  const out: string[] = [];
  for (const [section, entries] of doc) {
    assertWritableSection(section);
    out.push(`[${section}]`);
    for (const [key, value] of entries) {
      assertWritableKey(section, key);
      assertWritableValue(section, key, value);
      out.push(`${key} = ${value}`);
    }
    out.push('');
  }
  return out.map((line) => `${line}\n`).join('');
}

function hasLineBreak(text: string): boolean {
  return /[\r\n]/.test(text);
}

function assertWritableSection(section: string): void {
  if (section === '' || section === DEFAULT_SECTION || hasLineBreak(section)) {
    throw new Error(
      `cannot write INI section ${JSON.stringify(section)}: empty, DEFAULT or multi-line`,
    );
  }
}

function assertWritableKey(section: string, key: string): void {
  const unreadable =
    key === '' ||
    key !== key.toLowerCase() ||
    pyStrip(key) !== key ||
    /[=:\r\n]/.test(key) ||
    /^[[#;]/.test(key);
  if (unreadable) {
    throw new Error(
      `cannot write INI key ${JSON.stringify(key)} in [${section}]: configparser would read it differently`,
    );
  }
}

function assertWritableValue(section: string, key: string, value: string): void {
  // Never echo the value: it is usually an encrypted token or a secret.
  if (hasLineBreak(value)) {
    throw new Error(`cannot write INI value of ${key} in [${section}]: it contains a line break`);
  }
  if (pyStrip(value) !== value) {
    throw new Error(
      `cannot write INI value of ${key} in [${section}]: leading or trailing spaces would be lost`,
    );
  }
}

/**
 * The INI reader must read what Python's configparser (interpolation=None, strict) reads, because
 * users bring their email-oauth2-proxy files. Every expected document below was produced by
 * CPython 3.11's configparser from the same text.
 */

import { readFileSync } from 'node:fs';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseBoolean, parseIni, stringifyIni } from '../../src/config/configparser.js';
import type { IniDocument } from '../../src/config/configparser.js';
import { ConfigError } from '../../src/config/errors.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

/** A document as plain objects, so expectations read like the JSON configparser gives. */
function asObject(document: IniDocument): Record<string, Record<string, string>> {
  return Object.fromEntries(
    [...document].map(([section, values]) => [section, Object.fromEntries(values)]),
  );
}

function parseErrorOf(text: string): ConfigError {
  try {
    parseIni(text, 'my.config');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the text parsed');
}

describe('parseIni reads what configparser reads', () => {
  it('reads the email-oauth2-proxy compatibility fixture exactly as Python did, in the same order', () => {
    const expected = JSON.parse(fixture('emailproxy-compat.expected.json')) as {
      sections: Record<string, Record<string, string>>;
    };

    const document = parseIni(fixture('emailproxy-compat.config'), 'emailproxy-compat.config');

    expect(asObject(document)).toEqual(expected.sections);
    expect([...document.keys()]).toEqual(Object.keys(expected.sections));
    for (const [section, values] of document) {
      expect([...values.keys()]).toEqual(Object.keys(expected.sections[section] ?? {}));
    }
  });

  it('splits at the first "=" or ":", so URLs and times keep theirs, and strips spaces around key and value', () => {
    const text = '[s]\nurl = https://h:443/p?a=b\ntime: 12:30\nspaced   =   v  \n';

    expect(asObject(parseIni(text, 'f'))).toEqual({
      s: { url: 'https://h:443/p?a=b', time: '12:30', spaced: 'v' },
    });
  });

  it('has whole-line comments only: "#" and ";" inside a value are part of it', () => {
    const text =
      '[s]\nsecret = s3cr#t;v\n# whole-line comment\n; another\n    # indented comment\n';

    expect(asObject(parseIni(text, 'f'))).toEqual({ s: { secret: 's3cr#t;v' } });
  });

  it('continues a value on lines indented deeper than its key, keeping inner blank lines and dropping trailing ones', () => {
    const text = '[s]\nscope = a\n    b\n\n    c\n\n\nnext = 1\n';

    expect(asObject(parseIni(text, 'f'))).toEqual({ s: { scope: 'a\nb\n\nc', next: '1' } });
  });

  it('skips a comment line in the middle of a continued value', () => {
    expect(asObject(parseIni('[s]\nscope = a\n# c\n    b\n', 'f'))).toEqual({
      s: { scope: 'a\nb' },
    });
  });

  it('treats lines indented as much as the key before them as new keys, not continuations', () => {
    expect(asObject(parseIni('[s]\n  one = 1\n  two = 2\n', 'f'))).toEqual({
      s: { one: '1', two: '2' },
    });
  });

  it('lowercases keys but keeps section names exactly as written, dots and case included', () => {
    const text = '[Mixed.Case@Example.com]\nServer_Address = X\n[mixed.case@example.com]\nk=v\n';

    expect(asObject(parseIni(text, 'f'))).toEqual({
      'Mixed.Case@Example.com': { server_address: 'X' },
      'mixed.case@example.com': { k: 'v' },
    });
  });

  it('gives every section the [DEFAULT] keys it does not set itself, after its own, and does not list DEFAULT', () => {
    const text =
      '[DEFAULT]\nlocal_address = 0.0.0.0\nshared = d\n[a]\nown = 1\nshared = mine\n[b]\n';
    const document = parseIni(text, 'f');

    expect(asObject(document)).toEqual({
      a: { own: '1', shared: 'mine', local_address: '0.0.0.0' },
      b: { local_address: '0.0.0.0', shared: 'd' },
    });
    expect([...(document.get('a')?.keys() ?? [])]).toEqual(['own', 'shared', 'local_address']);
  });

  it('does no interpolation: "%" is an ordinary character', () => {
    expect(asObject(parseIni('[s]\nv = 100%% %(x)s\n', 'f'))).toEqual({ s: { v: '100%% %(x)s' } });
  });

  it('reads CRLF line endings, empty values, and ignores a UTF-8 byte order mark', () => {
    expect(asObject(parseIni('\uFEFF[s]\r\nk = v\r\nempty =\r\nalso:\r\n', 'f'))).toEqual({
      s: { k: 'v', empty: '', also: '' },
    });
  });

  it('takes a section name up to the last "]" on the line, spaces included', () => {
    expect(asObject(parseIni('[ spaced ]\n[a]b]\n', 'f'))).toEqual({ ' spaced ': {}, 'a]b': {} });
  });
});

describe('parseIni rejects what strict configparser rejects, with the line number', () => {
  it.each([
    {
      what: 'a section defined twice',
      text: '[IMAP-1993]\nserver_port = 993\n\n[IMAP-1993]\n',
      message:
        'my.config:4: section [IMAP-1993]: section defined twice; merge the two sections into one',
      at: { line: 4, section: 'IMAP-1993', key: undefined },
    },
    {
      what: 'a key set twice in a section (keys ignore case)',
      text: '[IMAP-1993]\nServer_Port = 993\nserver_port = 1993\n',
      message:
        'my.config:3: section [IMAP-1993], key server_port: key set twice in this section; keep only one of them',
      at: { line: 3, section: 'IMAP-1993', key: 'server_port' },
    },
    {
      what: 'a key set twice across two [DEFAULT] blocks',
      text: '[DEFAULT]\nk = 1\n[DEFAULT]\nk = 2\n',
      message:
        'my.config:4: section [DEFAULT], key k: key set twice in this section; keep only one of them',
      at: { line: 4, section: 'DEFAULT', key: 'k' },
    },
    {
      what: 'a key before any section header',
      text: '# my proxy\nserver_address = outlook.office365.com\n[IMAP-1993]\n',
      message:
        'my.config:2: text before the first [section] header; start the file with a header such as [IMAP-1993]',
      at: { line: 2, section: undefined, key: undefined },
    },
    {
      what: 'a line with no "=" or ":"',
      text: '[IMAP-1993]\nserver_address outlook.office365.com\n',
      message:
        'my.config:2: section [IMAP-1993]: line is not "key = value", a [section] header, an indented continuation ' +
        'or a # comment; add "=" between key and value, indent it to continue the value above, or start it with #',
      at: { line: 2, section: 'IMAP-1993', key: undefined },
    },
    {
      what: 'a value with no key',
      text: '[IMAP-1993]\n  : 993\n',
      message: 'my.config:2: section [IMAP-1993]: nothing before the ":"; write the key name first',
      at: { line: 2, section: 'IMAP-1993', key: undefined },
    },
  ])('rejects $what', ({ text, message, at }) => {
    const error = parseErrorOf(text);

    expect(error.message).toBe(message);
    expect({ line: error.line, section: error.section, key: error.key }).toEqual(at);
    expect(error.file).toBe('my.config');
  });

  it('never echoes the offending line, which may be a secret pasted without its key', () => {
    const error = parseErrorOf('[a@b.c]\nclient_secret = x\nsuper-secret-value\n');

    expect(error.message).not.toContain('super-secret-value');
  });

  it('either reads any text or throws a one-line ConfigError, never anything else', () => {
    const iniish = fc.string({
      unit: fc.constantFrom(
        '[',
        ']',
        'a',
        'K',
        '=',
        ':',
        ' ',
        '\t',
        '\n',
        '\r\n',
        '#',
        ';',
        '@',
        'DEFAULT',
        '\u2028',
      ),
      maxLength: 60,
    });
    fc.assert(
      fc.property(iniish, (text) => {
        try {
          parseIni(text, 'f');
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).message).not.toMatch(/[\r\n]/);
        }
      }),
    );
  });
});

describe('parseBoolean', () => {
  it.each(['1', 'yes', 'true', 'on', 'True', 'YES', 'On'])('reads %j as true', (text) => {
    expect(parseBoolean(text)).toBe(true);
  });

  it.each(['0', 'no', 'false', 'off', 'False', 'NO', 'Off'])('reads %j as false', (text) => {
    expect(parseBoolean(text)).toBe(false);
  });

  it.each(['', 'y', 'n', '2', 'enabled', ' true'])('does not read %j as a boolean', (text) => {
    expect(parseBoolean(text)).toBeUndefined();
  });
});

describe('stringifyIni', () => {
  it('writes one "key = value" line per entry and a blank line after each section', () => {
    const document: IniDocument = new Map([
      [
        'john.smith@example.com',
        new Map([
          ['token_salt', 'EBESExQVFhcYGRobHB0eHw=='],
          ['note', 'a#b;c=d:e'],
        ]),
      ],
      ['@', new Map([['empty', '']])],
    ]);

    expect(stringifyIni(document)).toBe(
      '[john.smith@example.com]\ntoken_salt = EBESExQVFhcYGRobHB0eHw==\nnote = a#b;c=d:e\n\n[@]\nempty = \n\n',
    );
  });

  it.each([
    { what: 'a value with a line break', section: 's', key: 'k', value: 'line1\nline2' },
    { what: 'a value with a carriage return', section: 's', key: 'k', value: 'a\rb' },
    { what: 'a value with leading spaces', section: 's', key: 'k', value: '  v' },
    { what: 'a value with trailing spaces', section: 's', key: 'k', value: 'v\t' },
    { what: 'an uppercase key', section: 's', key: 'Key', value: 'v' },
    { what: 'a key with "="', section: 's', key: 'a=b', value: 'v' },
    { what: 'a key with ":"', section: 's', key: 'a:b', value: 'v' },
    { what: 'a key starting with "#"', section: 's', key: '#k', value: 'v' },
    { what: 'a key starting with "["', section: 's', key: '[k]', value: 'v' },
    { what: 'an empty key', section: 's', key: '', value: 'v' },
    { what: 'a section named DEFAULT', section: 'DEFAULT', key: 'k', value: 'v' },
    { what: 'an empty section name', section: '', key: 'k', value: 'v' },
    { what: 'a multi-line section name', section: 'a\nb', key: 'k', value: 'v' },
  ])(
    'refuses $what rather than write something read back differently',
    ({ section, key, value }) => {
      const document: IniDocument = new Map([[section, new Map([[key, value]])]]);

      expect(() => stringifyIni(document)).toThrow(/cannot write INI/);
    },
  );

  it('does not put a refused value in its error message', () => {
    const document: IniDocument = new Map([['s', new Map([['refresh_token', 'SECRET\nTOKEN']])]]);

    expect(() => stringifyIni(document)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('SECRET') }),
    );
  });

  it('round-trips through parseIni for any document it accepts', () => {
    const text = (characters: string, minLength: number) =>
      fc.string({ unit: fc.constantFrom(...characters), minLength, maxLength: 12 });
    const section = text('abcXYZ019.-_@ []#;=:%é\t', 1).filter((name) => name !== 'DEFAULT');
    const key = text('abcxyz019._-@ %é', 1).filter((name) => name.trim() === name);
    const value = text('abcXYZ019 ._-@#;=:[]%"\'\\\té\u00a0/+', 0).filter((v) => v.trim() === v);
    const entries = fc.uniqueArray(fc.tuple(key, value), {
      selector: ([name]) => name,
      maxLength: 5,
    });
    const documents = fc
      .uniqueArray(fc.tuple(section, entries), { selector: ([name]) => name, maxLength: 5 })
      .map(
        (sections) =>
          new Map(sections.map(([name, values]) => [name, new Map(values)])) as IniDocument,
      );

    fc.assert(
      fc.property(documents, (document) => {
        expect(asObject(parseIni(stringifyIni(document), 'f'))).toEqual(asObject(document));
        expect([...parseIni(stringifyIni(document), 'f').keys()]).toEqual([...document.keys()]);
      }),
      { numRuns: 500 },
    );
  });
});

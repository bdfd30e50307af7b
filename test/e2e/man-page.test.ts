import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runClient } from '../support/clients.js';
import { PROXY_BIN } from '../support/proxy-process.js';

/**
 * The man page is written once, in docs/oauth2-mail-proxy.1.md, and turned into roff when the
 * package is built. It must list exactly the options `--help` lists, command by command, so an
 * option added to the CLI without a line in the man page (or the other way round) fails here.
 */
const MAN_SOURCE = fileURLToPath(new URL('../../docs/oauth2-mail-proxy.1.md', import.meta.url));
const OPTION_COMMANDS = ['run', 'authorize', 'status', 'check', 'web-url'] as const;
const COMMANDS = [...OPTION_COMMANDS, 'tokens'] as const;
const OPTION = /(?<![\w-])--?[a-zA-Z][\w-]*/g;

/** Options `--help` prints, from its "Options:" block (one option per line, continuation indented). */
async function helpOptions(command?: string): Promise<string[]> {
  const help = await runClient(process.execPath, [
    PROXY_BIN,
    ...(command ? command.split(' ') : []),
    '--help',
  ]);
  expect(help.code).toBe(0);
  const block = help.stdout.split(/^Options:\n/m)[1]!.split(/\n\n/)[0]!;
  return block
    .split('\n')
    .filter((line) => /^ {2}-/.test(line))
    .flatMap(
      (line) =>
        line
          .trim()
          .split(/\s{2,}/)[0]!
          .match(OPTION) ?? [],
    )
    .sort();
}

/**
 * Options the man page's OPTIONS section lists: under "Every command takes:" and under
 * "`<command>` also takes:", each option on a `* ` line.
 */
async function manOptions(): Promise<Map<string, string[]>> {
  const source = await readFile(MAN_SOURCE, 'utf8');
  const section = source.split(/^## OPTIONS$/m)[1]!.split(/^## /m)[0]!;
  const lists = new Map<string, string[]>();
  let current = '';
  for (const line of section.split('\n')) {
    const heading = /^(?:Every command|`([\w -]+)`(?: alone)?(?: also)?) takes:$/.exec(line);
    if (heading) current = heading[1] ?? 'every';
    else if (line.startsWith('* ')) {
      const term = line.slice(2).split(':')[0]!;
      lists.set(current, [...(lists.get(current) ?? []), ...(term.match(OPTION) ?? [])]);
    }
  }
  return lists;
}

describe('the man page', () => {
  it.each(OPTION_COMMANDS)('lists the options `%s --help` lists', async (command) => {
    const man = await manOptions();
    const listed = [...(man.get('every') ?? []), ...(man.get(command) ?? [])].sort();
    expect(listed).toEqual(await helpOptions(command));
  });

  it('lists the options of the program itself', async () => {
    const man = await manOptions();
    const listed = [...(man.get('oauth2-mail-proxy') ?? []), '--help', '-h'].sort();
    expect(listed).toEqual(await helpOptions());
  });

  it('lists the options of `tokens copy`, which takes none of the others', async () => {
    const man = await manOptions();
    const listed = [...(man.get('tokens copy') ?? []), '--help', '-h'].sort();
    expect(listed).toEqual(await helpOptions('tokens copy'));
  });

  it('names every command --help names', async () => {
    const help = await runClient(process.execPath, [PROXY_BIN, '--help']);
    const commands = help.stdout
      .split(/^Commands:\n/m)[1]!
      .split('\n')
      .map((line) => /^ {2}([\w-]+)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined && name !== 'help');
    expect(commands).toEqual([...COMMANDS]);
    const source = await readFile(MAN_SOURCE, 'utf8');
    for (const command of commands) expect(source).toMatch(new RegExp(`^\\* \`${command}\``, 'm'));
  });

  it('turns into roff that man renders without a warning', async () => {
    const roff = await runClient('npx', ['marked-man', '--no-breaks', MAN_SOURCE]);
    expect(roff.code, roff.stderr).toBe(0);
    const page = await runClient('sh', ['-c', 'man -l -', '--'], {
      input: roff.stdout,
      env: { MANWIDTH: '80', MAN_KEEP_FORMATTING: '', PAGER: 'cat', MANPAGER: 'cat' },
    });
    expect(page.stderr).toBe('');
    expect(page.stdout).toMatch(/^SYNOPSIS$/m);
  });
});

// Prints the package's debian/copyright (machine-readable format 1.0): this program's MIT licence,
// then one paragraph per bundled npm module under /usr/lib/oauth2-mail-proxy/node_modules, with the
// licence its package.json declares (the licence texts ship in each module's folder).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { argv, stdout } from 'node:process';

const lib = argv[2];
const own = JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8'));

function modules(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) =>
      name.startsWith('@') ? readdirSync(join(dir, name)).map((sub) => `${name}/${sub}`) : [name],
    )
    .flatMap((name) => {
      const folder = join(dir, name);
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
      return [{ name, manifest }, ...modules(join(folder, 'node_modules'))];
    });
}

const paragraphs = [
  [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${own.name}`,
    'Source: https://github.com/oauth2-mail-proxy/oauth2-mail-proxy',
  ],
  ['Files: *', 'Copyright: 2026 oauth2-mail-proxy developers', `License: ${own.license}`],
];
const seen = new Set();
for (const { name, manifest } of modules(join(lib, 'node_modules'))) {
  if (seen.has(name)) continue;
  seen.add(name);
  const author = typeof manifest.author === 'string' ? manifest.author : manifest.author?.name;
  paragraphs.push([
    `Files: usr/lib/${own.name}/node_modules/${name}/*`,
    `Copyright: ${author ?? `the ${name} authors`}`,
    `License: ${manifest.license ?? 'see the module folder'}`,
  ]);
}
paragraphs.push([
  'License: MIT',
  ' Permission is hereby granted, free of charge, to any person obtaining a copy of this',
  ' software and associated documentation files (the "Software"), to deal in the Software',
  ' without restriction, including without limitation the rights to use, copy, modify, merge,',
  ' publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons',
  ' to whom the Software is furnished to do so, subject to the following conditions:',
  ' .',
  ' The above copyright notice and this permission notice shall be included in all copies or',
  ' substantial portions of the Software.',
  ' .',
  ' THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,',
  ' INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR',
  ' PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE',
  ' FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR',
  ' OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER',
  ' DEALINGS IN THE SOFTWARE.',
]);
stdout.write(paragraphs.map((lines) => lines.join('\n')).join('\n\n') + '\n');

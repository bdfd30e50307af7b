import { randomBytes } from 'node:crypto';

/**
 * A message of about `size` bytes with CRLF lines of base64, plus lines that POP3 and SMTP must
 * dot-stuff (a lone `.`, `..`, `.x`) scattered through it, so transparency is tested, not just volume.
 */
export function dotStuffedMessage(size: number, from: string, to: string): Buffer {
  const header = Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: twenty megabytes\r\n\r\n`);
  const lines: Buffer[] = [header];
  let length = header.length;
  const random = randomBytes(57 * 4096);
  for (let i = 0; length < size; i += 1) {
    const offset = (i * 57) % (random.length - 57);
    const line =
      i % 1000 === 7
        ? ['.', '..', '.dot', '. .'][((i / 1000) % 4) | 0]!
        : random.subarray(offset, offset + 57).toString('base64');
    const bytes = Buffer.from(`${line}\r\n`);
    lines.push(bytes);
    length += bytes.length;
  }
  return Buffer.concat(lines);
}

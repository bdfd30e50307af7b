/** The POP3 side of the benchmark client: log in either way, RETR in bulk. */
import type { RouteName } from '../interleave.js';
import { Wire, type Endpoint } from '../wire.js';
import { expectReply, xoauth2, type Credentials } from './credentials.js';

const END_OF_MULTILINE = Buffer.from('\r\n.\r\n');

/**
 * Connects and logs in. `direct`: `AUTH XOAUTH2` over TLS (`stunnel`: the same in plain text to
 * stunnel); `proxy`: `USER` / `PASS` in plain text, as fetchmail does.
 */
export async function pop3Login(
  route: RouteName,
  endpoint: Endpoint,
  credentials: Credentials,
): Promise<Wire> {
  const wire = await Wire.connect(endpoint);
  expectReply(await wire.line(), /^\+OK/, 'POP3 greeting');
  if (route !== 'proxy') {
    wire.send(`AUTH XOAUTH2 ${xoauth2(credentials.user, credentials.accessToken)}\r\n`);
  } else {
    wire.send(`USER ${credentials.user}\r\n`);
    expectReply(await wire.line(), /^\+OK/, 'POP3 USER');
    wire.send(`PASS ${credentials.password}\r\n`);
  }
  expectReply(await wire.line(), /^\+OK/, `POP3 ${route} login`);
  return wire;
}

/** `RETR number`; returns the response's size in bytes. */
export async function pop3Retrieve(wire: Wire, number: number): Promise<number> {
  wire.send(`RETR ${number}\r\n`);
  let refused = false;
  const bytes = await wire.receiveBulk((tail) => {
    refused = tail.length < 512 && tail.toString('latin1', 0, 4) === '-ERR';
    return refused || tail.subarray(-END_OF_MULTILINE.length).equals(END_OF_MULTILINE);
  });
  if (refused) throw new Error(`POP3 RETR ${number} refused`);
  return bytes;
}

/** One `NOOP` round trip. */
export async function pop3Noop(wire: Wire): Promise<void> {
  wire.send('NOOP\r\n');
  expectReply(await wire.line(), /^\+OK/, 'POP3 NOOP');
}

/** The SMTP side of the benchmark client: log in either way, send one large message with DATA. */
import type { RouteName } from '../interleave.js';
import { Wire, type Endpoint } from '../wire.js';
import { expectReply, plain, xoauth2, type Credentials } from './credentials.js';

const EHLO = 'EHLO bench.client.test\r\n';

/** A complete reply (all of a multi-line one); returns its last line. */
export function smtpReply(wire: Wire): Promise<string> {
  return wire.lineMatching((line) => !/^\d{3}-/.test(line));
}

/**
 * `direct`: plain connection, `STARTTLS`, then `AUTH XOAUTH2` (Office 365's port 587);
 * `stunnel`: `AUTH XOAUTH2` in plain text to stunnel, which did the STARTTLS itself;
 * `proxy`: plain connection to the proxy and `AUTH PLAIN`, as msmtp or mutt do.
 */
export async function smtpLogin(
  route: RouteName,
  endpoint: Endpoint,
  credentials: Credentials,
  upstreamCa: Buffer,
): Promise<Wire> {
  let wire = await Wire.connect({ port: endpoint.port });
  expectReply(await smtpReply(wire), /^220 /, 'SMTP greeting');
  wire.send(EHLO);
  expectReply(await smtpReply(wire), /^250 /, 'SMTP EHLO');
  if (route === 'direct') {
    wire.send('STARTTLS\r\n');
    expectReply(await smtpReply(wire), /^220 /, 'SMTP STARTTLS');
    wire = await wire.startTls(upstreamCa);
    wire.send(EHLO);
    expectReply(await smtpReply(wire), /^250 /, 'SMTP EHLO after STARTTLS');
    wire.send(`AUTH XOAUTH2 ${xoauth2(credentials.user, credentials.accessToken)}\r\n`);
  } else if (route === 'stunnel') {
    wire.send(`AUTH XOAUTH2 ${xoauth2(credentials.user, credentials.accessToken)}\r\n`);
  } else {
    wire.send(`AUTH PLAIN ${plain(credentials.user, credentials.password)}\r\n`);
  }
  let reply = await smtpReply(wire);
  if (reply.startsWith('334 ')) {
    wire.send('\r\n');
    reply = await smtpReply(wire);
  }
  expectReply(reply, /^235 /, `SMTP ${route} login`);
  return wire;
}

/**
 * One message: `header` then `body` repeated `times` times (it must end with CRLF), through DATA.
 * Resolves when the server has accepted it, with the number of message bytes sent.
 */
export async function smtpSend(
  wire: Wire,
  from: string,
  to: string,
  header: string,
  body: Buffer,
  times: number,
): Promise<number> {
  wire.send(`MAIL FROM:<${from}>\r\n`);
  expectReply(await smtpReply(wire), /^250 /, 'SMTP MAIL FROM');
  wire.send(`RCPT TO:<${to}>\r\n`);
  expectReply(await smtpReply(wire), /^250 /, 'SMTP RCPT TO');
  wire.send('DATA\r\n');
  expectReply(await smtpReply(wire), /^354 /, 'SMTP DATA');
  wire.send(header);
  await wire.sendRepeated(body, times);
  wire.send('.\r\n');
  expectReply(await smtpReply(wire), /^250 /, 'SMTP end of data');
  return header.length + body.length * times;
}

/** One `NOOP` round trip. */
export async function smtpNoop(wire: Wire): Promise<void> {
  wire.send('NOOP\r\n');
  expectReply(await smtpReply(wire), /^250 /, 'SMTP NOOP');
}

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineReader } from '../../src/proxy/line-reader.js';
import { rewriteEhloReply } from '../../src/proxy/smtp/ehlo.js';
import {
  formatReply,
  readSmtpReply,
  replyText,
  SmtpReplySyntaxError,
  type SmtpReply,
} from '../../src/proxy/smtp/reply.js';

/** Reads `wire` the way the proxy reads the upstream. */
async function parse(wire: string): Promise<SmtpReply | null> {
  const stream = new PassThrough();
  stream.end(wire);
  return readSmtpReply(new LineReader(stream, 1000));
}

const lines = (...text: string[]): string => text.map((line) => `${line}\r\n`).join('');

describe('EHLO reply rewrite for password clients', () => {
  const cases: Array<{ server: string; upstream: string; canStartTls: boolean; client: string }> = [
    {
      server: 'Office 365 after STARTTLS',
      upstream: lines(
        '250-SN4PR0501CA0046.outlook.office365.com Hello [203.0.113.7]',
        '250-SIZE 157286400',
        '250-PIPELINING',
        '250-DSN',
        '250-ENHANCEDSTATUSCODES',
        '250-AUTH LOGIN XOAUTH2',
        '250-8BITMIME',
        '250-BINARYMIME',
        '250-CHUNKING',
        '250 SMTPUTF8',
      ),
      canStartTls: false,
      client: lines(
        '250-proxy.test Hello mutt.local',
        '250-SIZE 157286400',
        '250-PIPELINING',
        '250-DSN',
        '250-ENHANCEDSTATUSCODES',
        '250-8BITMIME',
        '250-BINARYMIME',
        '250-CHUNKING',
        '250-SMTPUTF8',
        '250 AUTH PLAIN LOGIN',
      ),
    },
    {
      server: 'Gmail, AUTH with many mechanisms, local STARTTLS configured',
      upstream: lines(
        '250-smtp.gmail.com at your service, [203.0.113.7]',
        '250-SIZE 35882577',
        '250-8BITMIME',
        '250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH',
        '250-ENHANCEDSTATUSCODES',
        '250-PIPELINING',
        '250-CHUNKING',
        '250 SMTPUTF8',
      ),
      canStartTls: true,
      client: lines(
        '250-proxy.test Hello mutt.local',
        '250-SIZE 35882577',
        '250-8BITMIME',
        '250-ENHANCEDSTATUSCODES',
        '250-PIPELINING',
        '250-CHUNKING',
        '250-SMTPUTF8',
        '250-AUTH PLAIN LOGIN',
        '250 STARTTLS',
      ),
    },
    {
      server: 'an old server with AUTH= and its STARTTLS still listed',
      upstream: lines(
        '250-mail.example.org',
        '250-AUTH=LOGIN PLAIN',
        '250-auth xoauth2',
        '250-STARTTLS',
        '250 DSN',
      ),
      canStartTls: false,
      client: lines('250-proxy.test Hello mutt.local', '250-DSN', '250 AUTH PLAIN LOGIN'),
    },
    {
      server: 'a one-line reply',
      upstream: lines('250 tiny.example.org'),
      canStartTls: false,
      client: lines('250-proxy.test Hello mutt.local', '250 AUTH PLAIN LOGIN'),
    },
    {
      server: 'keywords that merely start like ours',
      upstream: lines(
        '250-mail.example.org',
        '250-AUTHX FOO',
        '250-STARTTLSX',
        '250 XCLIENT NAME ADDR',
      ),
      canStartTls: false,
      client: lines(
        '250-proxy.test Hello mutt.local',
        '250-AUTHX FOO',
        '250-STARTTLSX',
        '250-XCLIENT NAME ADDR',
        '250 AUTH PLAIN LOGIN',
      ),
    },
  ];

  it.each(cases)('$server', async ({ upstream, canStartTls, client }) => {
    const reply = await parse(upstream);
    expect(reply).not.toBeNull();
    const rewritten = rewriteEhloReply(reply as SmtpReply, {
      hostname: 'proxy.test',
      clientName: 'mutt.local',
      canStartTls,
    });
    expect(formatReply(rewritten)).toBe(client);
  });
});

describe('SMTP replies as the proxy reads them', () => {
  it('reads a multi-line reply as one reply and leaves the next one for later', async () => {
    const stream = new PassThrough();
    stream.end(lines('250-first', '250-second', '250 third', '354 Go ahead'));
    const reader = new LineReader(stream, 1000);
    expect(await readSmtpReply(reader)).toEqual({ code: 250, lines: ['first', 'second', 'third'] });
    expect(await readSmtpReply(reader)).toEqual({ code: 354, lines: ['Go ahead'] });
    expect(await readSmtpReply(reader)).toBeNull();
  });

  it.each([
    ['a bare code', '235\r\n', { code: 235, lines: [''] }],
    ['an empty continuation challenge', '334 \r\n', { code: 334, lines: [''] }],
    ['a bare LF ending', '220 ready\n', { code: 220, lines: ['ready'] }],
  ])('accepts %s', async (_name, wire, expected) => {
    expect(await parse(wire)).toEqual(expected);
  });

  it.each([
    ['text that is no reply', 'hello\r\n'],
    ['a code out of range', '650 nope\r\n'],
    ['a code that changes mid-reply', '250-one\r\n251 two\r\n'],
  ])('refuses %s', async (_name, wire) => {
    await expect(parse(wire)).rejects.toBeInstanceOf(SmtpReplySyntaxError);
  });

  it('returns null when the server closes in the middle of a reply', async () => {
    expect(await parse('250-first\r\n')).toBeNull();
  });

  it('takes the enhanced status code off the text it quotes', () => {
    expect(replyText({ code: 235, lines: ['2.7.0 Authentication successful'] })).toBe(
      'Authentication successful',
    );
    expect(replyText({ code: 235, lines: ['Authentication successful'] })).toBe(
      'Authentication successful',
    );
    expect(replyText({ code: 535, lines: ['5.7.3 Authentication', '5.7.3 unsuccessful'] })).toBe(
      'Authentication unsuccessful',
    );
  });
});

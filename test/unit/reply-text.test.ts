import { describe, expect, it } from 'vitest';
import { cannotLogInText, oneLine, tokenRejectedText } from '../../src/proxy/reply-text.js';
import { UpstreamError } from '../../src/proxy/upstream.js';

const credentials = {
  account: 'john@example.com',
  user: 'john@example.com',
  accessToken: 'never shown',
};

describe('reply texts shared by the protocols', () => {
  it('keeps any message on one line', () => {
    expect(oneLine('first line\r\nsecond\n\nthird\r\n')).toBe('first line second third');
  });

  it('cuts a long text at a byte limit without splitting a UTF-8 character', () => {
    const text = `${'a'.repeat(8)}é${'b'.repeat(10)}`;
    expect(oneLine(text, 9)).toBe('a'.repeat(8));
    expect(oneLine(text, 10)).toBe(`${'a'.repeat(8)}é`);
    expect(Buffer.byteLength(oneLine('€'.repeat(1000)))).toBeLessThanOrEqual(900);
  });

  it('names the server and the command to run when a token is refused, with one full stop', () => {
    expect(
      tokenRejectedText(
        'imap.example.com:993',
        credentials,
        'the server said: Authentication failed.',
      ),
    ).toBe(
      'imap.example.com:993 refused the OAuth2 login for john@example.com: the server said: Authentication failed. ' +
        'If this persists, re-authorise the account: oauth2-mail-proxy authorize john@example.com',
    );
  });

  it('says which server could not be reached and that retrying later is the answer', () => {
    expect(
      cannotLogInText(
        new UpstreamError('unreachable', 'imap.example.com:993', 'connection refused'),
      ),
    ).toBe('Cannot log in to imap.example.com:993: connection refused. Try again later');
  });
});

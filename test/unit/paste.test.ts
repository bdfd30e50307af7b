import { describe, expect, it } from 'vitest';
import {
  isPasteProblem,
  parsePastedRedirect,
  type PasteProblemKind,
} from '../../src/oauth/paste.js';

const STATE = 'pLq3v0l9Hn2mX7cK4rT8wZ';
// Shaped like real codes: Microsoft work accounts ("0.A..."), personal accounts ("M.C5..."), Google ("4/0A...").
const MS_CODE =
  '0.AXEAiM9ZkR7Jm0yq3mQy7vCfQbyUXp6k5HNOuL5jNjNMKddxAAA.AgABBAIAAADW6jl31mB3T7ugrWTT8pFeAwDs_wUA9P-qLhGw';
const MSA_CODE = 'M.C507_BAY.2.U.8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f';
const GOOGLE_CODE = '4/0AVG7fiQxYz_Abc-DEFghIJkLmNoPqRsTuVwXyZ0123456789abcdEFGhij';
const SESSION_STATE = '0c8f1e32-7d4b-4c5a-9b6e-2f1a3d5c7e9b';

const microsoftLocalhost = `https://localhost/?code=${MS_CODE}&state=${STATE}&session_state=${SESSION_STATE}`;
const nativeClient = `https://login.microsoftonline.com/common/oauth2/nativeclient?code=${MSA_CODE}&state=${STATE}`;

/** Cuts a string into lines of `width` characters, as a terminal wraps a long line. */
function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
  return lines.join(`\n${indent}`);
}

describe('parsePastedRedirect accepts what users really paste', () => {
  const accepted: ReadonlyArray<readonly [string, string, string]> = [
    ['a clean https://localhost redirect with session_state', microsoftLocalhost, MS_CODE],
    ["Microsoft's nativeclient page", nativeClient, MSA_CODE],
    [
      'the nativeclient path on localhost',
      `https://localhost/common/oauth2/nativeclient?code=${MS_CODE}&state=${STATE}&session_state=${SESSION_STATE}`,
      MS_CODE,
    ],
    [
      "Google's loopback redirect with scope after the code",
      `http://127.0.0.1:8080/?state=${STATE}&code=${GOOGLE_CODE}&scope=https://mail.google.com/`,
      GOOGLE_CODE,
    ],
    ['surrounding whitespace and a newline', `  \n${microsoftLocalhost}\r\n  `, MS_CODE],
    ['double quotes', `"${microsoftLocalhost}"`, MS_CODE],
    ['single quotes', `'${microsoftLocalhost}'`, MS_CODE],
    ['angle brackets', `<${microsoftLocalhost}>`, MS_CODE],
    ['a trailing full stop from a sentence', `${microsoftLocalhost}.`, MS_CODE],
    ['parentheses and a full stop', `(${microsoftLocalhost}).`, MS_CODE],
    ['a line break from terminal wrapping', wrap(microsoftLocalhost, 80), MS_CODE],
    [
      'terminal wrapping with indented continuation lines',
      wrap(microsoftLocalhost, 60, '    '),
      MS_CODE,
    ],
    [
      'wrapping inside the code itself',
      `https://localhost/?code=${MS_CODE.slice(0, 30)}\n${MS_CODE.slice(30)}&state=${STATE}`,
      MS_CODE,
    ],
    ['a label in front', `Redirect URL: ${microsoftLocalhost}`, MS_CODE],
    ['words after the address', `${microsoftLocalhost} (copied from Firefox)`, MS_CODE],
    ['HTML-escaped ampersands', microsoftLocalhost.replaceAll('&', '&amp;'), MS_CODE],
    [
      'only the query string',
      `?code=${MS_CODE}&state=${STATE}&session_state=${SESSION_STATE}`,
      MS_CODE,
    ],
    ['the address without its scheme', `localhost/?code=${MS_CODE}&state=${STATE}`, MS_CODE],
    ['a fragment response', `https://localhost/#code=${MS_CODE}&state=${STATE}`, MS_CODE],
    [
      'a percent-encoded code',
      `https://localhost/?code=${encodeURIComponent(GOOGLE_CODE)}&state=${STATE}`,
      GOOGLE_CODE,
    ],
    [
      "Google's approval page, with the state in its response parameter",
      `https://accounts.google.com/o/oauth2/approval/v2/approvalnativeapp?auto=false&response=${encodeURIComponent(`code=${GOOGLE_CODE}&scope=https://mail.google.com/&state=${STATE}`)}&approvalCode=${encodeURIComponent(GOOGLE_CODE)}`,
      GOOGLE_CODE,
    ],
    [
      "Google's approval page with approvalCode alone",
      `https://accounts.google.com/o/oauth2/approval/v2?auto=false&approvalCode=${encodeURIComponent(GOOGLE_CODE)}`,
      GOOGLE_CODE,
    ],
  ];

  it.each(accepted)('%s', (_name, pasted, code) => {
    expect(parsePastedRedirect(pasted, STATE)).toEqual({ code });
  });
});

describe('parsePastedRedirect explains what is wrong with a paste', () => {
  it('takes approvalCode without a state only from Google itself', () => {
    const forged = `https://localhost/?approvalCode=${encodeURIComponent(GOOGLE_CODE)}`;
    expect(parsePastedRedirect(forged, STATE)).toMatchObject({ problem: 'state_mismatch' });
  });

  const rejected: ReadonlyArray<readonly [string, string, PasteProblemKind, RegExp]> = [
    ['an empty paste', '', 'not_a_url', /not a web address/],
    ['a bare code', MS_CODE, 'not_a_url', /not a web address/],
    [
      'a sentence',
      'I could not sign in, the page said localhost refused to connect',
      'not_a_url',
      /not a web address/,
    ],
    ['the address without a code', 'https://localhost/', 'no_code', /no code=/],
    [
      'the sign-in link itself',
      `https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=abc&response_type=code&state=${STATE}`,
      'no_code',
      /sign-in link itself/,
    ],
    [
      'the wrongplace page Microsoft bounces to',
      'https://login.microsoftonline.com/common/wrongplace',
      'no_code',
      /wrongplace/,
    ],
    [
      'an older sign-in link',
      `https://localhost/?code=${MS_CODE}&state=an-older-state&session_state=${SESSION_STATE}`,
      'state_mismatch',
      /older/,
    ],
    [
      'an address cut off before its state',
      `https://localhost/?code=${MS_CODE}`,
      'state_mismatch',
      /cut short/,
    ],
  ];

  it.each(rejected)('%s', (_name, pasted, problem, message) => {
    const result = parsePastedRedirect(pasted, STATE);
    expect(isPasteProblem(result)).toBe(true);
    expect(result).toMatchObject({ problem });
    expect(isPasteProblem(result) && result.message).toMatch(message);
  });

  it("reports a cancelled sign-in with the provider's error and AADSTS number", () => {
    const pasted = `https://localhost/?error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.%0d%0aTrace+ID%3a+5d3c&state=${STATE}`;
    expect(parsePastedRedirect(pasted, STATE)).toEqual({
      problem: 'error_in_url',
      message:
        'The sign-in failed with "access_denied": AADSTS65004: User declined to consent to access the app.',
      error: 'access_denied',
      errorDescription:
        'AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 5d3c',
      aadsts: 65004,
    });
  });

  it('reports missing admin consent (AADSTS65001) from the nativeclient page', () => {
    const pasted = `https://login.microsoftonline.com/common/oauth2/nativeclient?error=consent_required&error_description=AADSTS65001%3a+The+user+or+administrator+has+not+consented+to+use+the+application.&state=${STATE}`;
    const result = parsePastedRedirect(pasted, STATE);
    expect(result).toMatchObject({
      problem: 'error_in_url',
      error: 'consent_required',
      aadsts: 65001,
    });
  });

  it('reports an error even when the link was an older one', () => {
    const result = parsePastedRedirect('https://localhost/?error=access_denied&state=old', STATE);
    expect(result).toMatchObject({ problem: 'error_in_url', error: 'access_denied' });
  });

  it('never repeats a code-like value in its message', () => {
    const result = parsePastedRedirect(
      `https://localhost/?error=invalid_request&error_description=bad+code+${MS_CODE}&state=${STATE}`,
      STATE,
    );
    expect(isPasteProblem(result) && result.message).not.toContain(MS_CODE);
  });
});

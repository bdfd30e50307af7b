/**
 * Reads the redirect address a user copied from the browser after signing in. Headless users
 * copy it out of an address bar or a terminal, so it arrives with junk: surrounding quotes or
 * angle brackets, a trailing full stop or parenthesis from the sentence it was pasted into,
 * `&amp;` from HTML, and line breaks where a terminal wrapped it.
 */
import { aadstsNumber, redactTokens } from './errors.js';

export type PasteProblemKind = 'not_a_url' | 'error_in_url' | 'no_code' | 'state_mismatch';

/** Why a paste could not be used, with a message that tells the user what to paste instead. */
export interface PasteProblem {
  readonly problem: PasteProblemKind;
  readonly message: string;
  /** For `error_in_url`: the `error` the provider put in the address. */
  readonly error?: string;
  /** For `error_in_url`: its `error_description`, as sent. */
  readonly errorDescription?: string;
  /** For `error_in_url`: Microsoft's AADSTS number, when the description starts with one. */
  readonly aadsts?: number;
}

export interface PastedCode {
  readonly code: string;
}

/** Narrows the result of `parsePastedRedirect`. */
export function isPasteProblem(result: PastedCode | PasteProblem): result is PasteProblem {
  return 'problem' in result;
}

const PASTE_WHOLE_ADDRESS =
  "After signing in, copy the whole address from the browser's address bar (it contains code=...) and paste it.";

/**
 * Extracts the authorization code from a pasted redirect address and checks its `state`.
 * Accepts any redirect address (`https://localhost/?code=...`, Microsoft's `.../nativeclient?code=...`,
 * Google's `http://127.0.0.1:port/?state=...&code=...`) with extra parameters such as
 * `session_state`; the token request uses the configured `redirect_uri`, not the pasted one.
 */
export function parsePastedRedirect(
  text: string,
  expectedState: string,
): PastedCode | PasteProblem {
  const url = extractUrl(text);
  if (url === undefined) {
    return {
      problem: 'not_a_url',
      message: `That is not a web address. ${PASTE_WHOLE_ADDRESS}`,
    };
  }
  const params = responseParameters(url);

  const error = params.get('error');
  if (error) {
    const description = params.get('error_description') ?? undefined;
    const aadsts = aadstsNumber(undefined, description);
    const shown = description ? `: ${redactTokens(description.split(/\r?\n/, 1)[0] ?? '')}` : '';
    return {
      problem: 'error_in_url',
      message: `The sign-in failed with "${error}"${shown}${/[.!?]$/.test(shown) ? '' : '.'}`,
      error,
      ...(description !== undefined && { errorDescription: description }),
      ...(aadsts !== undefined && { aadsts }),
    };
  }

  const code = params.get('code');
  if (!code) return { problem: 'no_code', message: noCodeMessage(url, params) };

  const state = params.get('state');
  // Google's own approval page names the code `approvalCode` and may carry no state: the address
  // is Google's, not a redirect anyone else could have made, so the code alone is taken.
  if (state === null && params.has('approvalCode') && url.hostname === 'accounts.google.com')
    return { code };
  if (state === null) {
    return {
      problem: 'state_mismatch',
      message: `The address has a code but no state=, so it may be cut short or from another sign-in. ${PASTE_WHOLE_ADDRESS}`,
    };
  }
  if (state !== expectedState) {
    return {
      problem: 'state_mismatch',
      message:
        'This address belongs to a different (probably older) sign-in link. Open the newest link, sign in, and paste the address you end up on.',
    };
  }
  return { code };
}

/** Finds the address in the pasted text and strips what copying added around and inside it. */
function extractUrl(text: string): URL | undefined {
  const joined = text
    .replace(/&amp;/gi, '&')
    // A line break inside an address is a terminal's wrapping, never part of the address.
    .replace(/[ \t]*[\r\n]+[ \t]*/g, '')
    .trim();

  let candidate: string;
  const start = joined.search(/https?:\/\//i);
  if (start >= 0) {
    candidate = joined.slice(start);
  } else {
    // Only the query part was copied ("?code=...&state=..." or "localhost/?code=...").
    const query = /(?:^|[?#&])(?:code|error|state)=/.exec(joined);
    if (!query) return undefined;
    const from = joined.lastIndexOf('?', query.index + 1);
    candidate = `https://pasted.invalid/?${joined.slice(from >= 0 ? from + 1 : query.index).replace(/^[?#&]/, '')}`;
  }

  // The address ends at the first character no address contains unescaped, or at a space before trailing words.
  candidate = candidate.split(/[\s"<>`]/, 1)[0] ?? '';
  candidate = candidate.replace(/[.,;:!'")\]}>]+$/, '');
  try {
    return new URL(candidate);
  } catch {
    return undefined;
  }
}

/** The query parameters, or the fragment's when a provider answered with `response_mode=fragment`. */
function responseParameters(url: URL): URLSearchParams {
  const query = url.searchParams;
  if (query.has('code') || query.has('error')) return query;
  const approval = query.get('approvalCode');
  if (approval !== null) {
    // Google's approval page: `response=code%3D...%26state%3D...` when it has one, and `approvalCode`.
    const response = new URLSearchParams(query.get('response') ?? '');
    if (!response.has('code')) response.set('code', approval);
    response.set('approvalCode', approval);
    return response;
  }
  const fragment = new URLSearchParams(url.hash.replace(/^#/, ''));
  if (fragment.has('code') || fragment.has('error')) return fragment;
  return query;
}

function noCodeMessage(url: URL, params: URLSearchParams): string {
  if (params.has('client_id') && params.has('response_type')) {
    return 'That is the sign-in link itself. Open it in a browser, sign in, then paste the address the browser ends up on.';
  }
  if (url.pathname.includes('wrongplace')) {
    return 'The page moved on to /wrongplace and the code was lost. Copy the address before the page changes, or set redirect_uri = https://localhost/common/oauth2/nativeclient.';
  }
  return `The address has no code= part. ${PASTE_WHOLE_ADDRESS}`;
}

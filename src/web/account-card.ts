import { createHash } from 'node:crypto';
import type { AccountStatus } from '../control/protocol.js';
import { html, raw, type Html } from './html.js';
import { qrSvg } from './qr.js';

/** Hands out a fresh one-time token for each form drawn (see csrf.ts). */
export type FormTokens = () => string;

/** One account: its state in words, its token's expiry and last refresh, and what to do next. */
export async function accountCard(account: AccountStatus, formToken: FormTokens): Promise<Html> {
  const id = `account-${digest(account.account).slice(0, 12)}`;
  return html`<section
    class="account state-${account.state}"
    id="${id}"
    data-state="${account.state}"
    data-version="${digest(JSON.stringify(account))}"
    aria-labelledby="${id}-name"
  >
    <header class="account-head">
      <h2 id="${id}-name">${account.account}</h2>
      <span class="badge">${badge(account)}</span>
    </header>
    <dl class="facts">
      <div>
        <dt>Access token</dt>
        <dd>${expiryText(account)}</dd>
      </div>
      <div>
        <dt>Last refresh</dt>
        <dd>
          ${
            account.lastRefresh
              ? html`${when(account.lastRefresh.at)}: ${account.lastRefresh.outcome}`
              : 'none since the proxy started'
          }
        </dd>
      </div>
      ${
        account.pending &&
        html`<div>
          <dt>Logins waiting</dt>
          <dd class="waiting">${account.pending.waiting}</dd>
        </div>`
      }
    </dl>
    <p class="next"><strong>Next step:</strong> ${nextStep(account)}</p>
    ${await actions(account, id, formToken)}
  </section>`;
}

function badge(account: AccountStatus): string {
  switch (account.state) {
    case 'active':
      return 'Working';
    case 'expired':
      return account.hasRefreshToken ? 'Working' : 'Needs sign-in';
    case 'pending':
      return 'Waiting for sign-in';
    case 'authorised-unsaved':
      return 'Signed in, not stored';
    case 'needs-reauthorisation':
      return 'Needs sign-in again';
    case 'none':
      return 'Not signed in';
  }
}

function expiryText(account: AccountStatus): Html | string {
  if (account.accessTokenExpiry === undefined) return 'none';
  const at = account.accessTokenExpiry * 1000;
  return at > Date.now() ? html`valid until ${when(at)}` : html`expired ${when(at)}`;
}

/** The one thing the user should do now, in the words `status` and `authorize` use. */
function nextStep(account: AccountStatus): string {
  switch (account.state) {
    case 'active':
      return 'nothing. The proxy refreshes the token by itself.';
    case 'expired':
      return account.hasRefreshToken
        ? 'nothing. The next login refreshes the token.'
        : 'start the sign-in below.';
    case 'pending':
      return account.pending?.userCode
        ? 'open the sign-in page on any device (or scan the code with a phone), enter the code shown, and approve. This page updates when it is done.'
        : 'open the sign-in page, sign in, then paste the whole address the browser ends on into the box below.';
    case 'authorised-unsaved':
      return "type the password your mail client uses for this account, so the new tokens are encrypted and stored now (otherwise the next login's password does it).";
    case 'needs-reauthorisation':
      return 'the provider refused the refresh token: start the sign-in below.';
    case 'none':
      return 'start the sign-in below (or log in once from the mail client).';
  }
}

async function actions(
  account: AccountStatus,
  id: string,
  formToken: FormTokens,
): Promise<Html | undefined> {
  const pending = account.pending;
  if (account.state === 'pending' && pending?.userCode)
    return html`<div class="device">
      <div class="device-text">
        <p>Code to enter</p>
        <p class="user-code" id="${id}-code">${pending.userCode}</p>
        <p>
          <a class="button" href="${pending.url}" target="_blank" rel="noopener noreferrer"
            >Open ${new URL(pending.url).host}</a
          >
        </p>
      </div>
      <figure class="qr">
        ${raw(await qrSvg(pending.url))}
        <figcaption>Scan to open the sign-in page on a phone</figcaption>
      </figure>
    </div>`;
  if (account.state === 'pending' && pending)
    return html`<ol class="steps">
      <li>
        <a class="button" href="${pending.url}" target="_blank" rel="noopener noreferrer"
          >Open the sign-in page</a
        >
      </li>
      <li>
        Sign in. The browser then ends on a page that may fail to load: that is expected. Copy the
        whole address from its address bar.
      </li>
      <li>
        <form method="post" action="/complete" class="stack">
          ${hidden(account.account, formToken)}
          <label for="${id}-redirect">Address the browser ended on</label>
          <textarea
            id="${id}-redirect"
            name="redirect"
            rows="3"
            required
            autocomplete="off"
            autocapitalize="off"
            spellcheck="false"
            placeholder="https://localhost/?code=…"
          ></textarea>
          ${pending.waiting === 0 && passwordField(id, 'optional')}
          <button type="submit">Finish sign-in</button>
        </form>
      </li>
    </ol>`;
  if (account.state === 'authorised-unsaved')
    return html`<form method="post" action="/store" class="stack">
      ${hidden(account.account, formToken)} ${passwordField(id, 'required')}
      <button type="submit">Encrypt and store</button>
    </form>`;
  if (needsSignIn(account))
    return html`<form method="post" action="/authorize">
      ${hidden(account.account, formToken)}
      <button type="submit">Start sign-in</button>
    </form>`;
  return undefined;
}

function needsSignIn(account: AccountStatus): boolean {
  return (
    account.state === 'none' ||
    account.state === 'needs-reauthorisation' ||
    (account.state === 'expired' && !account.hasRefreshToken)
  );
}

function hidden(account: string, formToken: FormTokens): Html {
  return html`<input type="hidden" name="account" value="${account}" /><input
      type="hidden"
      name="csrf"
      value="${formToken()}"
    />`;
}

function passwordField(id: string, need: 'optional' | 'required'): Html {
  return html`<label for="${id}-password"
      >Mail client's password for this account${need === 'optional' ? ' (optional)' : ''}</label
    >
    <input
      type="password"
      id="${id}-password"
      name="password"
      autocomplete="off"
      ${need === 'required' ? raw(' required') : ''}
    />
    <p class="help">
      It encrypts the new tokens at once and is not
      kept.${need === 'optional' ? ' Left empty, the next login from the mail client sets it.' : ''}
    </p>`;
}

/** A time the way the user reads it on any device: UTC, to the minute. */
export function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

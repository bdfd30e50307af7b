import type { AccountStatus } from '../control/protocol.js';
import { accountCard, type FormTokens } from './account-card.js';
import { html, type Html } from './html.js';
import type { Flash } from './sessions.js';

/** The page shell: our own style sheet and script only (the Content-Security-Policy allows nothing else). */
function shell(title: string, body: Html, refresh?: string): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title}</title>
        <link rel="stylesheet" href="/static/page.css" />
        ${refresh && html` <meta http-equiv="refresh" content="0; url=${refresh}" />`}
        <script src="/static/page.js" defer></script>
      </head>
      <body>
        ${body}
      </body>
    </html> `.text;
}

function top(host: string, signedIn: Html | undefined): Html {
  return html`<header class="top">
    <div>
      <h1>oauth2-mail-proxy</h1>
      <p class="sub">Mail accounts on ${host}</p>
    </div>
    ${signedIn}
  </header>`;
}

/** The accounts, as the page and its live updates draw them. */
export async function accountList(
  accounts: readonly AccountStatus[],
  formToken: FormTokens,
): Promise<Html> {
  if (accounts.length === 0)
    return html`<p class="empty">
      No accounts are configured. Add an account section to the configuration file and reload the
      proxy.
    </p>`;
  return html`${await Promise.all(accounts.map((account) => accountCard(account, formToken)))}`;
}

export async function dashboardPage(options: {
  host: string;
  accounts: readonly AccountStatus[];
  flash: Flash | undefined;
  formToken: FormTokens;
}): Promise<string> {
  const { flash } = options;
  return shell(
    'Accounts · oauth2-mail-proxy',
    html`${top(
        options.host,
        html`<form method="post" action="/logout" class="signout">
          <input type="hidden" name="csrf" value="${options.formToken()}" /><button
            type="submit"
            class="quiet"
          >
            Sign out
          </button>
        </form>`,
      )}
      <main>
        ${flash && html`<div class="flash flash-${flash.tone}" role="${flash.tone === 'error' ? 'alert' : 'status'}">${flash.account && html`<strong>${flash.account}:</strong> `}${flash.text}</div>`}
        <div id="accounts" aria-live="polite">
          ${await accountList(options.accounts, options.formToken)}
        </div>
      </main>
      <footer>
        <p>
          This page updates by itself when a login starts waiting or an authorisation
          completes.<noscript> Without JavaScript, reload it to see changes.</noscript> Times are
          UTC.
        </p>
      </footer>`,
  );
}

/** The page for a browser without a session: the access key, from the address the owner printed. */
export function accessKeyPage(host: string, problem?: string): string {
  return shell(
    'Access key · oauth2-mail-proxy',
    html`${top(host, undefined)}
      <main>
        <section class="account narrow">
          <h2>Access key needed</h2>
          ${problem && html`<div class="flash flash-error" role="alert">${problem}</div>`}
          <p>
            This page is only for the person running the proxy. Open the address it printed at
            start-up, or run <code>oauth2-mail-proxy web-url</code> as the user the proxy runs as;
            or paste the key from that address here.
          </p>
          <form method="post" action="/login" class="stack">
            <label for="key">Access key</label>
            <input
              type="password"
              id="key"
              name="key"
              required
              autocomplete="off"
              autocapitalize="off"
              spellcheck="false"
            />
            <button type="submit">Open</button>
          </form>
        </section>
      </main>`,
  );
}

/** A refusal that is not about the access key (a form without its token, a sent-twice form...). */
export function messagePage(host: string, heading: string, text: string): string {
  return shell(
    `${heading} · oauth2-mail-proxy`,
    html`${top(host, undefined)}
      <main>
        <section class="account narrow">
          <h2>${heading}</h2>
          <p>${text}</p>
          <p><a class="button" href="/">Back to the accounts</a></p>
        </section>
      </main>`,
  );
}

/** After the access key, for a browser that arrived from another site's link: moves on to the page. */
export function continuePage(host: string): string {
  return shell(
    'Signed in · oauth2-mail-proxy',
    html`${top(host, undefined)}
      <main>
        <section class="account narrow">
          <h2>Signed in</h2>
          <p><a class="button" href="/">Continue to the accounts</a></p>
        </section>
      </main>`,
    '/',
  );
}

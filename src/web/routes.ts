import type http from 'node:http';
import type { Logger } from 'pino';
import type { LoginThrottle } from '../auth/login-throttle.js';
import type { ControlReply } from '../control/protocol.js';
import { isLoopbackHost } from '../config/loopback.js';
import { sameSecret } from './access-secret.js';
import type { ChangeFeed } from './change-feed.js';
import { PAGE_JS } from './client-script.js';
import { issueFormToken, spendFormToken } from './csrf.js';
import type { DaemonPort } from './daemon-port.js';
import { BodyTooLargeError, readForm, securityHeaders, seeOther, send } from './http-answers.js';
import { accessKeyPage, accountList, continuePage, dashboardPage, messagePage } from './layout.js';
import { sessionCookie, type Flash, type Sessions } from './sessions.js';
import { PAGE_CSS } from './style.js';

export interface WebContext {
  readonly port: DaemonPort;
  readonly feed: ChangeFeed;
  readonly sessions: Sessions;
  /** Failed access-key attempts wait like failed mail logins. */
  readonly throttle: LoginThrottle;
  readonly secret: string;
  /** Served over TLS (the cookie is then `Secure`). */
  readonly secure: boolean;
  /** Whether the page answers a request naming this `Host` (see {@link hostAllowed}). */
  readonly hostAllowed: (host: string) => boolean;
  /** Shown in the page's header. */
  readonly machine: string;
  readonly log: Logger;
}

/** The key's query parameter in the printed address; dropped by a redirect on first use. */
export const KEY_PARAMETER = 'key';
/** The name the throttle counts failed access-key attempts under. */
const THROTTLE_NAME = 'web page';

export function webRoutes(
  context: WebContext,
): (request: http.IncomingMessage, response: http.ServerResponse) => Promise<void> {
  return async (request, response) => {
    securityHeaders(response);
    try {
      await route(context, request, response);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        send(response, 413, messagePage(context.machine, 'Too large', 'That form was too large.'));
        return;
      }
      context.log.error({ event: 'web_failed', err: (err as Error).message }, 'web page failed');
      if (!response.headersSent)
        send(
          response,
          500,
          messagePage(
            context.machine,
            'Something went wrong',
            'The proxy logged what happened. Try again.',
          ),
        );
      else response.end();
    }
  };
}

async function route(
  context: WebContext,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  const { machine } = context;
  if (!context.hostAllowed(request.headers.host ?? '')) {
    send(
      response,
      421,
      messagePage(machine, 'Wrong address', 'Open the page at the address the proxy printed.'),
    );
    return;
  }
  const url = new URL(request.url ?? '/', 'http://page.invalid');
  const method = request.method ?? 'GET';

  if (method === 'GET' && url.pathname === '/static/page.css') {
    send(response, 200, PAGE_CSS, 'text/css; charset=utf-8');
    return;
  }
  if (method === 'GET' && url.pathname === '/static/page.js') {
    send(response, 200, PAGE_JS, 'text/javascript; charset=utf-8');
    return;
  }
  if (method === 'POST' && !sameOrigin(request, context)) {
    send(response, 403, messagePage(machine, 'Refused', 'The form came from another site.'));
    return;
  }
  if (method === 'GET' && url.pathname === '/' && url.searchParams.has(KEY_PARAMETER)) {
    await signIn(context, request, response, url.searchParams.get(KEY_PARAMETER) ?? '');
    return;
  }
  if (method === 'POST' && url.pathname === '/login') {
    await signIn(context, request, response, (await readForm(request)).get('key') ?? '');
    return;
  }

  const session = context.sessions.fromCookie(request.headers.cookie);
  if (!session) {
    send(response, 401, accessKeyPage(machine));
    return;
  }
  const formToken = (): string => issueFormToken(session);

  if (method === 'GET' && url.pathname === '/') {
    const flash = session.flash;
    delete session.flash;
    const accounts = await context.port.status();
    send(response, 200, await dashboardPage({ host: machine, accounts, flash, formToken }));
    return;
  }
  if (method === 'GET' && url.pathname === '/accounts') {
    send(response, 200, (await accountList(await context.port.status(), formToken)).text);
    return;
  }
  if (method === 'GET' && url.pathname === '/events') {
    streamChanges(context.feed, request, response);
    return;
  }
  if (method === 'POST') {
    const form = await readForm(request);
    const check = spendFormToken(session, form.get('csrf') ?? undefined);
    if (check !== 'ok') {
      context.log.warn({ event: 'web_form_refused', why: check }, 'web form refused');
      send(
        response,
        403,
        messagePage(
          machine,
          'Form refused',
          check === 'missing'
            ? 'The form came without its security token, so it was not sent from this page. Nothing was changed.'
            : 'This form was sent already, or it is too old. Nothing was changed; go back to the accounts and use the form shown there now.',
        ),
      );
      return;
    }
    const action = FORMS[url.pathname];
    if (action) {
      session.flash = await action(context.port, form);
      seeOther(response, '/');
      return;
    }
    if (url.pathname === '/logout') {
      context.sessions.end(session);
      response.setHeader('Set-Cookie', sessionCookie(undefined, context.secure));
      seeOther(response, '/');
      return;
    }
  }
  send(response, 404, messagePage(machine, 'Not found', 'There is no such page.'));
}

/** Checks the access key; a right one opens a session and drops the key from the address. */
async function signIn(
  context: WebContext,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  key: string,
): Promise<void> {
  const source = request.socket.remoteAddress;
  if (!sameSecret(key, context.secret)) {
    context.log.warn(
      { event: 'web_key_refused', remote: source },
      'wrong access key for the web page',
    );
    await context.throttle.failed(THROTTLE_NAME, source);
    send(response, 403, accessKeyPage(context.machine, 'That access key is wrong.'));
    return;
  }
  context.throttle.succeeded(THROTTLE_NAME, source);
  const session = context.sessions.create();
  response.setHeader('Set-Cookie', sessionCookie(session, context.secure));
  // A browser that came from another site's link would not send the SameSite=Strict cookie along
  // a redirect; a page of our own moving on does (and still drops the key from the address).
  if (request.headers['sec-fetch-site'] === 'cross-site')
    send(response, 200, continuePage(context.machine));
  else seeOther(response, '/');
}

/** A form's `Origin` (browsers send it on every POST) must be the page the request went to. */
function sameOrigin(request: http.IncomingMessage, context: WebContext): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    const parsed = new URL(origin);
    return (
      parsed.protocol === (context.secure ? 'https:' : 'http:') &&
      parsed.host === (request.headers.host ?? '').toLowerCase()
    );
  } catch {
    return false;
  }
}

/**
 * Over plain HTTP (loopback only) the `Host` must be a loopback name or address, whatever the
 * port (an SSH tunnel may use another): a web site that re-points its own name at 127.0.0.1 (DNS
 * rebinding) is refused. Over TLS the certificate already ties the page to its names.
 */
export function hostAllowed(secure: boolean): (host: string) => boolean {
  return (host) => {
    if (secure) return true;
    try {
      return isLoopbackHost(new URL(`http://${host}`).hostname);
    } catch {
      return false;
    }
  };
}

function streamChanges(
  feed: ChangeFeed,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): void {
  response.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
  response.write(': accounts change feed\n\n');
  const stop = feed.subscribe(() => response.write('event: change\ndata: accounts\n\n'));
  // Proxies and phones drop quiet connections; a comment every half minute keeps it open.
  const keepOpen = setInterval(() => response.write(': still here\n\n'), 30_000);
  request.socket.once('close', () => {
    clearInterval(keepOpen);
    stop();
  });
}

type FormAction = (port: DaemonPort, form: URLSearchParams) => Promise<Flash>;

const FORMS: Readonly<Record<string, FormAction>> = {
  '/authorize': async (port, form) => {
    const account = form.get('account') ?? '';
    const reply = await port.authorize(account);
    if (!reply.ok) return failure(account, reply);
    return {
      account,
      tone: 'ok',
      text:
        'flow' in reply && reply.flow === 'device'
          ? 'Sign-in started: enter the code shown below on the sign-in page.'
          : 'Sign-in started: follow the steps below.',
    };
  },
  '/complete': async (port, form) => {
    const account = form.get('account') ?? '';
    const reply = await port.complete(account, form.get('redirect') ?? '');
    if (!reply.ok)
      return reply.kind === 'paste'
        ? problem(account, `That address did not work: ${explain(reply)}`)
        : failure(account, reply);
    return authorized(port, account, reply, form.get('password') ?? '');
  },
  '/store': async (port, form) => {
    const account = form.get('account') ?? '';
    const password = form.get('password') ?? '';
    if (password === '')
      return problem(account, "Type the mail client's password to store the tokens.");
    const reply = await port.store(account, password);
    return reply.ok ? done(account, STORED) : failure(account, reply);
  },
};

const STORED =
  'Signed in. The new tokens are stored, encrypted with that password, and the proxy is using them.';

/**
 * After a successful sign-in: a waiting login has stored the tokens with its password; otherwise
 * the password typed on the page encrypts them now (the rule of `authorize` in a terminal).
 */
async function authorized(
  port: DaemonPort,
  account: string,
  reply: ControlReply,
  password: string,
): Promise<Flash> {
  if (!('loginWaiting' in reply) || reply.loginWaiting)
    return done(
      account,
      'Signed in. The waiting login went through and the proxy is using the new token.',
    );
  if (password === '')
    return done(
      account,
      'Signed in. The proxy uses the new token at the next login, whose password then encrypts it.',
    );
  const stored = await port.store(account, password);
  return stored.ok ? done(account, STORED) : failure(account, stored);
}

const done = (account: string, text: string): Flash => ({ account, tone: 'ok', text });
const problem = (account: string, text: string): Flash => ({ account, tone: 'error', text });

function failure(account: string, reply: ControlReply): Flash {
  return problem(account, `Could not authorise: ${explain(reply)}`);
}

/** The reply's message and hint, as the terminal's `authorize` shows them. */
function explain(reply: ControlReply): string {
  if (reply.ok) return '';
  return `${reply.message}${reply.hint ? `. ${reply.hint}` : ''}`;
}

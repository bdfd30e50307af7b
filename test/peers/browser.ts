/**
 * A scripted stand-in for a user's web browser: follows redirects by hand, keeps cookies, and
 * submits the auto-posting and confirmation forms the identity provider renders. It stops at the
 * first redirect that leaves the identity provider (the client's redirect URI), without fetching it,
 * the way a headless user copies the URL from the address bar.
 */

/** Where a browsing session ended. */
export type BrowseOutcome =
  /** Redirected away from the identity provider; `url` is that redirect target, not fetched. */
  | { readonly kind: 'left'; readonly url: string }
  /** A page with nothing left to submit. */
  | { readonly kind: 'page'; readonly url: string; readonly status: number; readonly html: string };

export interface BrowseOptions {
  /** Origin of the identity provider; a redirect anywhere else ends the session. */
  readonly origin: string;
  /** Extra request headers sent on every request (test hints to the identity provider). */
  readonly headers?: Readonly<Record<string, string>>;
}

const MAX_STEPS = 25;

/** Cookies by name only: the provider's cookie paths never collide on a name within one flow. */
class CookieJar {
  readonly #cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const separator = pair.indexOf('=');
      if (separator <= 0) continue;
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      const expires = attributes
        .map((attribute) => attribute.trim())
        .find((attribute) => attribute.toLowerCase().startsWith('expires='));
      const expired =
        expires !== undefined && Date.parse(expires.slice('expires='.length)) <= Date.now();
      if (value === '' || expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

interface PostForm {
  readonly action: string;
  readonly fields: URLSearchParams;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributesOf(tag: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const match of tag.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)) {
    attributes.set((match[1] ?? '').toLowerCase(), decodeEntities(match[2] ?? ''));
  }
  return attributes;
}

/** The first POST form on the page with its prefilled (hidden or valued) fields, as a user's click would send it. */
function findPostForm(html: string): PostForm | undefined {
  for (const formMatch of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const formAttributes = attributesOf(formMatch[1] ?? '');
    if ((formAttributes.get('method') ?? 'get').toLowerCase() !== 'post') continue;
    const fields = new URLSearchParams();
    for (const inputMatch of (formMatch[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const input = attributesOf(inputMatch[1] ?? '');
      const name = input.get('name');
      const value = input.get('value');
      if (name !== undefined && value !== undefined) fields.append(name, value);
    }
    return { action: formAttributes.get('action') ?? '', fields };
  }
  return undefined;
}

/** Browses from `startUrl` until the identity provider redirects elsewhere or shows a final page. */
export async function browse(startUrl: string, options: BrowseOptions): Promise<BrowseOutcome> {
  const jar = new CookieJar();
  let url = new URL(startUrl);
  let form: URLSearchParams | undefined;

  for (let step = 0; step < MAX_STEPS; step += 1) {
    const headers: Record<string, string> = { accept: 'text/html', ...options.headers };
    const cookie = jar.header();
    if (cookie !== '') headers.cookie = cookie;
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method: form === undefined ? 'GET' : 'POST',
      body: form?.toString() ?? null,
      headers,
      redirect: 'manual',
    });
    jar.store(response);

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== options.origin) return { kind: 'left', url: next.href };
      url = next;
      form = undefined;
      continue;
    }

    const html = await response.text();
    if (response.status >= 400) {
      throw new Error(
        `identity provider answered ${response.status} at ${url.pathname}: ${html.slice(0, 500)}`,
      );
    }
    const next = findPostForm(html);
    if (next === undefined) return { kind: 'page', url: url.href, status: response.status, html };
    url = new URL(next.action, url);
    form = next.fields;
  }
  throw new Error(`browsing did not finish within ${MAX_STEPS} requests (last at ${url.href})`);
}

/**
 * A real OAuth2 identity provider for tests (oidc-provider 9), shaped like Microsoft's v2
 * endpoints: same paths, rotated refresh tokens, Azure AD error bodies, the device flow, the
 * password grant (ROPC), Google's JWT bearer grant for a service account with domain-wide
 * delegation, and introspection for Dovecot. Listens on 127.0.0.1 on a port chosen at run time, over plain HTTP.
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { ClientInstance, default as Provider } from 'oidc-provider';

import { browse } from './browser.js';
import { ROUTES, idpConfiguration } from './idp-config.js';
import type { IdpClients } from './idp-config.js';
import { TokenFaults, TokenRequestCounter, faultableTokenEndpoint } from './idp-faults.js';
import type { TokenFault, TokenRequestCounts } from './idp-faults.js';
import {
  azureResponseShapes,
  microsoftRedirects,
  rememberErrorDetails,
} from './idp-microsoft-shapes.js';
import { LOGIN_AS_HEADER, autoCompleteInteractions } from './idp-interactions.js';
import { createStoreAdapter } from './idp-store.js';
import { TestUsers, registerPasswordGrant } from './idp-password-grant.js';
import {
  SERVICE_ACCOUNT_EMAIL,
  createServiceAccount,
  identifyAssertionClient,
  registerJwtBearerGrant,
} from './idp-jwt-bearer-grant.js';
import type { TestServiceAccount } from './idp-jwt-bearer-grant.js';
import { createCertificateClient } from './idp-certificate-client.js';

export type { TokenFault, TokenRequestCounts } from './idp-faults.js';
export type { ClientCredentials, IdpClients } from './idp-config.js';
export type { CertificateClient } from './idp-certificate-client.js';
export { DEVICE_CODE_GRANT, MAIL_SCOPES } from './idp-config.js';
export { PASSWORD_GRANT, TEST_USER_PASSWORD } from './idp-password-grant.js';
export { JWT_BEARER_GRANT, type TestServiceAccount } from './idp-jwt-bearer-grant.js';

/** The user tests sign in as unless they name another. */
export const DEFAULT_TEST_USER = 'user@example.com';

/** Office 365 mail scopes plus `offline_access`, as the proxy requests them. */
export const OFFICE365_TEST_SCOPE = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
  'offline_access',
].join(' ');

/** Redirect URI the helpers use (Thunderbird's, which Microsoft requires exactly). */
export const TEST_REDIRECT_URI = 'https://localhost';

/**
 * The lines of an account section for `name` against `idp`'s public client, as an Office 365
 * user writes one (no section end: callers add token lines or a blank line).
 */
export function publicClientAccountLines(
  idp: Pick<Idp, 'urls' | 'clientId'>,
  name: string,
): string[] {
  return [
    `[${name}]`,
    `permission_url = ${idp.urls.authorize}`,
    `token_url = ${idp.urls.token}`,
    `oauth2_scope = ${OFFICE365_TEST_SCOPE}`,
    `redirect_uri = ${TEST_REDIRECT_URI}`,
    `client_id = ${idp.clientId}`,
    'client_secret =',
  ];
}

export interface IdpOptions {
  /** Lifetime of access tokens (and client-credentials tokens); default 3600. */
  readonly accessTokenTtlSeconds?: number;
  /** Who signs in when neither the test browser nor `login_hint` names a user. */
  readonly defaultUser?: string;
  /** Demand PKCE from the public client. Microsoft does not for native apps; default false. */
  readonly requirePkce?: boolean;
  /** More redirect URIs for the public and desktop clients. Loopback http URIs match any port anyway. */
  readonly extraRedirectUris?: readonly string[];
  /** Adds `interval` to device-code responses (Microsoft sends 5; oidc-provider none, so clients default to 5 s). */
  readonly deviceCodeIntervalSeconds?: number;
  /** Whose mailbox a client_credentials token opens (its introspection `sub`); default the default user. */
  readonly clientCredentialsUser?: string;
  /** Users the service account may act as (domain-wide delegation); default the default user. */
  readonly delegatedUsers?: readonly string[];
}

export interface IdpUrls {
  readonly issuer: string;
  readonly authorize: string;
  readonly token: string;
  readonly devicecode: string;
  readonly introspect: string;
  /** Where a user enters a device code (Microsoft's `https://microsoft.com/devicelogin`). */
  readonly deviceLogin: string;
}

/** A token response, as the helpers return it. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresIn: number;
  readonly scope: string;
}

export interface Idp {
  readonly urls: IdpUrls;
  /** The public client's id (no secret). */
  readonly clientId: string;
  readonly clients: IdpClients;
  readonly defaultUser: string;
  /** A snapshot of the token-endpoint call counters. */
  readonly tokenRequests: TokenRequestCounts;
  resetTokenRequests(): void;
  /** Makes the next `times` (default 1) token-endpoint calls fail as `kind`. */
  failNextToken(kind: TokenFault, times?: number): void;
  /**
   * Acts as the user's browser on `authorizeUrl`: signs in as `loginHint` (else the URL's
   * `login_hint`, else the default user), consents, and returns the URL the provider redirects to
   * (code, state, session_state) without fetching it.
   */
  browser(authorizeUrl: string, loginHint?: string): Promise<string>;
  /** Enters and confirms a device-flow user code as a signed-in user would. */
  approveDevice(userCode: string, loginHint?: string): Promise<void>;
  /**
   * Sets the password `user` signs in with in the password grant (adding the user). The default
   * user starts with `TEST_USER_PASSWORD`; other users cannot use the password grant until set.
   */
  setUserPassword(user: string, password: string): void;
  /** Makes the password grant refuse `user` with AADSTS50076 (MFA required), or stop doing so. */
  requireMfa(user: string, required?: boolean): void;
  /**
   * A Google Workspace service account: its JSON key (`keyJson`, whose `token_uri` is this
   * provider's token endpoint) gets tokens with the JWT bearer grant for the users it has
   * domain-wide delegation for.
   */
  readonly serviceAccount: TestServiceAccount;
  /** Runs the code flow with PKCE for `user` and returns fresh tokens (not counted in `tokenRequests`). */
  issueTokensFor(user: string, scope?: string): Promise<IssuedTokens>;
  /** Closes the listening socket and every connection: the identity provider is down. */
  refuse(): Promise<void>;
  /** Listens again on the same port after {@link Idp.refuse}. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/** Marks requests from this module's own helpers: not counted, never faulted. */
const HELPER_HEADER = 'x-test-helper';
const INTERACTION_PREFIX = '/common/login/';

let providerModule: Promise<typeof import('oidc-provider')> | undefined;

/**
 * oidc-provider warns about Node 20 when first imported and about quick-start defaults when
 * constructed; both are expected here and would only bury real test output.
 */
async function withoutProviderNotices<T>(work: () => Promise<T> | T): Promise<T> {
  const { warn, info } = console;
  const filter =
    (print: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) return;
      print(...args);
    };
  console.warn = filter(warn);
  console.info = filter(info);
  try {
    return await work();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

function loadProvider(): Promise<typeof import('oidc-provider')> {
  providerModule ??= withoutProviderNotices(() => import('oidc-provider'));
  return providerModule;
}

function signingKeys(): { keys: object[] } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keys: [
      { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig' },
    ],
  };
}

function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/**
 * Microsoft (like RFC 8252) accepts a loopback redirect URI on any port when it is registered
 * without one; oidc-provider only does that for `native` clients, which may not register
 * `https://localhost`, so the public client is a `web` client with this rule added.
 */
function allowLoopbackOnAnyPort(provider: Provider): void {
  const prototype = provider.Client.prototype as ClientInstance;
  const registeredCheck = prototype.redirectUriAllowed;
  prototype.redirectUriAllowed = function redirectUriAllowed(
    this: ClientInstance,
    uri: string,
  ): boolean {
    if (registeredCheck.call(this, uri)) return true;
    const candidate = URL.parse(uri);
    if (candidate === null || !isLoopbackHttp(candidate)) return false;
    return this.redirectUris.some((registered) => {
      const allowed = URL.parse(registered);
      return (
        allowed !== null &&
        isLoopbackHttp(allowed) &&
        allowed.port === '' &&
        allowed.hostname === candidate.hostname &&
        allowed.pathname === candidate.pathname &&
        allowed.search === candidate.search
      );
    });
  };
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Starts a test identity provider on 127.0.0.1 and a free port. Start-up takes tens of milliseconds. */
export async function startIdp(options: IdpOptions = {}): Promise<Idp> {
  const { default: ProviderClass, errors } = await loadProvider();
  const defaultUser = options.defaultUser ?? DEFAULT_TEST_USER;
  const certificateClient = await createCertificateClient();
  const clients: IdpClients = {
    publicClientId: 'a1b2c3d4-0000-4000-8000-00000000c11e',
    desktop: {
      clientId: 'test-desktop-client.apps.example.test',
      clientSecret: `desktop-${randomBytes(9).toString('base64url')}`,
    },
    introspection: {
      clientId: 'dovecot-introspection',
      clientSecret: randomBytes(18).toString('base64url'),
    },
    service: {
      clientId: 'b1b2c3d4-0000-4000-8000-0000000005e7',
      clientSecret: randomBytes(18).toString('base64url'),
    },
    passwordClientId: 'c1b2c3d4-0000-4000-8000-00000000a55d',
    serviceAccountEmail: SERVICE_ACCOUNT_EMAIL,
    certificate: certificateClient.client,
  };

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = await withoutProviderNotices(
    () =>
      new ProviderClass(issuer, {
        ...idpConfiguration({
          clients,
          extraRedirectUris: options.extraRedirectUris ?? [],
          accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 3600,
          requirePkce: options.requirePkce ?? false,
          clientCredentialsUser: options.clientCredentialsUser ?? defaultUser,
          interactionPathPrefix: INTERACTION_PREFIX,
          cookieKeys: [randomBytes(24).toString('base64url')],
          jwks: signingKeys(),
          certificateClientJwk: certificateClient.publicJwk,
        }),
        adapter: createStoreAdapter(),
      }),
  );
  allowLoopbackOnAnyPort(provider);
  const users = new TestUsers(defaultUser);
  registerPasswordGrant(provider, errors, users);
  const tokenUrl = issuer + ROUTES.token;
  const serviceAccount = createServiceAccount(tokenUrl, options.delegatedUsers ?? [defaultUser]);
  registerJwtBearerGrant(provider, serviceAccount, tokenUrl);

  const faults = new TokenFaults();
  const counter = new TokenRequestCounter();
  rememberErrorDetails(provider);
  provider.use(
    faultableTokenEndpoint({ tokenPath: ROUTES.token, faults, counter, skipHeader: HELPER_HEADER }),
  );
  provider.use(
    azureResponseShapes({ deviceCodeIntervalSeconds: options.deviceCodeIntervalSeconds }),
  );
  provider.use(microsoftRedirects(issuer));
  provider.use(autoCompleteInteractions(provider, INTERACTION_PREFIX, defaultUser));
  provider.use(identifyAssertionClient(ROUTES.token));
  server.on('request', provider.callback());

  const urls: IdpUrls = {
    issuer,
    authorize: issuer + ROUTES.authorization,
    token: tokenUrl,
    devicecode: issuer + ROUTES.device_authorization,
    introspect: issuer + ROUTES.introspection,
    deviceLogin: issuer + ROUTES.code_verification,
  };
  const helperHeaders = (loginHint?: string): Record<string, string> => ({
    [HELPER_HEADER]: '1',
    ...(loginHint === undefined ? {} : { [LOGIN_AS_HEADER]: loginHint }),
  });

  const closeAll = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (!server.listening) {
        server.closeAllConnections();
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });

  const browser = async (authorizeUrl: string, loginHint?: string): Promise<string> => {
    const outcome = await browse(authorizeUrl, {
      origin: issuer,
      headers: helperHeaders(loginHint),
    });
    if (outcome.kind === 'left') return outcome.url;
    throw new Error(
      `the authorization flow ended on a page instead of a redirect: ${outcome.html.slice(0, 300)}`,
    );
  };

  return {
    urls,
    clientId: clients.publicClientId,
    clients,
    defaultUser,
    get tokenRequests(): TokenRequestCounts {
      return counter.snapshot();
    },
    resetTokenRequests(): void {
      counter.reset();
    },
    failNextToken(kind: TokenFault, times = 1): void {
      faults.failNext(kind, times);
    },
    browser,
    setUserPassword(user: string, password: string): void {
      users.setPassword(user, password);
    },
    requireMfa(user: string, required = true): void {
      users.requireMfa(user, required);
    },
    serviceAccount,
    async approveDevice(userCode: string, loginHint?: string): Promise<void> {
      const start = `${urls.deviceLogin}?${new URLSearchParams({ user_code: userCode })}`;
      const outcome = await browse(start, { origin: issuer, headers: helperHeaders(loginHint) });
      if (outcome.kind !== 'page' || !outcome.html.includes('id="device-approved"')) {
        throw new Error(
          `device code ${userCode} was not approved: ${outcome.kind === 'page' ? outcome.html.slice(0, 300) : outcome.url}`,
        );
      }
    },
    async issueTokensFor(user: string, scope = OFFICE365_TEST_SCOPE): Promise<IssuedTokens> {
      const { verifier, challenge } = pkcePair();
      const state = randomUUID();
      const authorizeUrl = `${urls.authorize}?${new URLSearchParams({
        client_id: clients.publicClientId,
        response_type: 'code',
        redirect_uri: TEST_REDIRECT_URI,
        scope,
        state,
        login_hint: user,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`;
      const redirect = new URL(await browser(authorizeUrl, user));
      const code = redirect.searchParams.get('code');
      if (code === null || redirect.searchParams.get('state') !== state) {
        throw new Error(`no authorization code in the redirect: ${redirect.search}`);
      }
      const response = await fetch(urls.token, {
        method: 'POST',
        headers: { ...helperHeaders(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          client_id: clients.publicClientId,
          code,
          redirect_uri: TEST_REDIRECT_URI,
          code_verifier: verifier,
        }),
      });
      const body = (await response.json()) as Record<string, unknown>;
      if (
        !response.ok ||
        typeof body.access_token !== 'string' ||
        typeof body.refresh_token !== 'string'
      ) {
        throw new Error(
          `token request failed with ${response.status}: ${String(body.error)} ${String(body.error_description)}`,
        );
      }
      return {
        accessToken: body.access_token,
        refreshToken: body.refresh_token,
        expiresIn: Number(body.expires_in),
        scope: String(body.scope ?? ''),
      };
    },
    refuse: closeAll,
    async resume(): Promise<void> {
      if (server.listening) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    async stop(): Promise<void> {
      faults.clear();
      await closeAll();
      await certificateClient.remove();
    },
  };
}

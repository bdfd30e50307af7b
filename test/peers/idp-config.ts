/**
 * oidc-provider configuration that makes it behave like Microsoft's v2 endpoints for the flows the
 * proxy uses: authorization code (+ optional PKCE), refresh tokens rotated on every use, the device
 * grant, client credentials, the password grant (see idp-password-grant.ts), Google's JWT bearer
 * grant for service accounts (see idp-jwt-bearer-grant.ts), and introspection for Dovecot.
 */
import type { Configuration, KoaContext } from 'oidc-provider';
import type { CertificateClient } from './idp-certificate-client.js';

/** The grant type string of RFC 8628's device flow. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** The grant type string of RFC 7523's JWT bearer grant (Google service accounts). */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Microsoft's and Google's mail scopes; oidc-provider silently drops scopes it does not list. */
export const MAIL_SCOPES: readonly string[] = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
  'https://outlook.office365.com/IMAP.AccessAsUser.All',
  'https://outlook.office365.com/POP.AccessAsUser.All',
  'https://outlook.office365.com/SMTP.Send',
  'https://outlook.office.com/.default',
  'https://outlook.office365.com/.default',
  'https://mail.google.com/',
];

/** Every scope the provider grants; it silently drops the others from requests. */
export const SUPPORTED_SCOPES: readonly string[] = [
  'openid',
  'offline_access',
  'profile',
  'email',
  ...MAIL_SCOPES,
];

/** Redirect URIs users paste back from Microsoft and Google flows. */
export const PUBLIC_REDIRECT_URIS: readonly string[] = [
  'https://login.microsoftonline.com/common/oauth2/nativeclient',
  'https://localhost/common/oauth2/nativeclient',
  'https://localhost',
  'http://localhost/',
  'http://127.0.0.1/',
];

/** Client id and secret of a confidential client. */
export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** The clients the test identity provider registers. */
export interface IdpClients {
  /** Public client (no secret): code flow with optional PKCE, refresh, device flow. */
  readonly publicClientId: string;
  /** Google-style "desktop app": code flow with a non-confidential secret sent in the body. */
  readonly desktop: ClientCredentials;
  /** Confidential client allowed to introspect tokens (Dovecot uses it, Basic auth). */
  readonly introspection: ClientCredentials;
  /** Confidential client for the client_credentials grant (secret in the body). */
  readonly service: ClientCredentials;
  /**
   * Public client allowed the password grant and refresh, like a Microsoft app registration with
   * "Allow public client flows" on. The other clients may not use the password grant.
   */
  readonly passwordClientId: string;
  /**
   * The test service account's `client_email`: Google knows a service account by it, and its
   * JWT bearer requests authenticate with the signed assertion alone.
   */
  readonly serviceAccountEmail: string;
  /**
   * Confidential client with certificate credentials (`private_key_jwt`, Microsoft's uploaded
   * certificate): code flow, refresh and client_credentials. Requests without a valid assertion
   * signed by its key are refused.
   */
  readonly certificate: CertificateClient;
}

export interface IdpSettings {
  readonly clients: IdpClients;
  readonly extraRedirectUris: readonly string[];
  readonly accessTokenTtlSeconds: number;
  readonly requirePkce: boolean;
  /** Whose mailbox a client_credentials token opens (Microsoft app-only tokens name no user). */
  readonly clientCredentialsUser: string;
  readonly interactionPathPrefix: string;
  readonly cookieKeys: readonly string[];
  readonly jwks: { keys: readonly object[] };
  /** The public key of {@link IdpClients.certificate}'s certificate, as a JWK. */
  readonly certificateClientJwk: object;
}

/** Route paths, in Microsoft's layout. */
export const ROUTES = {
  authorization: '/common/oauth2/v2.0/authorize',
  token: '/common/oauth2/v2.0/token',
  device_authorization: '/common/oauth2/v2.0/devicecode',
  code_verification: '/devicelogin',
  introspection: '/common/oauth2/v2.0/introspect',
  jwks: '/common/discovery/v2.0/keys',
  userinfo: '/oidc/userinfo',
  end_session: '/common/oauth2/v2.0/logout',
} as const;

const DAY = 24 * 60 * 60;

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Builds the oidc-provider configuration object. */
export function idpConfiguration(settings: IdpSettings): Configuration {
  const { clients } = settings;
  const web = { application_type: 'web', id_token_signed_response_alg: 'ES256' };
  return {
    routes: ROUTES,
    clients: [
      {
        ...web,
        client_id: clients.publicClientId,
        client_name: 'oauth2-mail-proxy test public client',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
        response_types: ['code'],
        redirect_uris: [...PUBLIC_REDIRECT_URIS, ...settings.extraRedirectUris],
      },
      {
        ...web,
        client_id: clients.desktop.clientId,
        client_secret: clients.desktop.clientSecret,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/', 'http://localhost/', ...settings.extraRedirectUris],
      },
      {
        ...web,
        client_id: clients.introspection.clientId,
        client_secret: clients.introspection.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
      {
        ...web,
        client_id: clients.service.clientId,
        client_secret: clients.service.clientSecret,
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        ...web,
        client_id: clients.certificate.clientId,
        client_name: 'oauth2-mail-proxy test client with certificate credentials',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'RS256',
        jwks: { keys: [settings.certificateClientJwk] },
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        redirect_uris: [...PUBLIC_REDIRECT_URIS, ...settings.extraRedirectUris],
      },
      {
        ...web,
        client_id: clients.passwordClientId,
        client_name: 'oauth2-mail-proxy test public client with password grant',
        token_endpoint_auth_method: 'none',
        // 'password' is registered with provider.registerGrantType once the provider exists.
        grant_types: ['password', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
      {
        ...web,
        client_id: clients.serviceAccountEmail,
        client_name: 'oauth2-mail-proxy test service account',
        token_endpoint_auth_method: 'none',
        // Registered with provider.registerGrantType once the provider exists.
        grant_types: [JWT_BEARER_GRANT],
        response_types: [],
        redirect_uris: [],
      },
    ],
    scopes: [...SUPPORTED_SCOPES],
    claims: { openid: ['sub'], email: ['email'], profile: ['preferred_username', 'name'] },
    jwks: settings.jwks,
    cookies: { keys: [...settings.cookieKeys] },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    pkce: { required: () => settings.requirePkce },
    // Rotate on every use; oidc-provider then treats reuse of a rotated token as theft and revokes the grant.
    rotateRefreshToken: true,
    // Without these two, offline_access is dropped unless prompt=consent and no refresh token is issued.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    extraTokenClaims: async (_ctx: unknown, token: { kind: string }) =>
      token.kind === 'ClientCredentials' ? { sub: settings.clientCredentialsUser } : undefined,
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, email: sub, preferred_username: sub, name: sub }),
    }),
    ttl: {
      AccessToken: settings.accessTokenTtlSeconds,
      ClientCredentials: settings.accessTokenTtlSeconds,
      AuthorizationCode: 600,
      DeviceCode: 900,
      IdToken: 3600,
      // Microsoft: 90 days, renewed by every rotation.
      RefreshToken: 90 * DAY,
      Grant: 365 * DAY,
      Interaction: 3600,
      Session: DAY,
    },
    interactions: {
      url: async (_ctx: unknown, interaction: { uid: string }) =>
        `${settings.interactionPathPrefix}${interaction.uid}`,
    },
    renderError: async (ctx: KoaContext, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = page(
        'Sign-in error',
        `<p id="error">${escapeHtml(out.error)}</p><p>${escapeHtml(out.error_description ?? '')}</p>`,
      );
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: { enabled: false },
      revocation: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: { clientAuthMethod: string }) =>
          client.clientAuthMethod !== 'none',
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx: KoaContext, form: string, _out: unknown, err?: Error) => {
          ctx.body =
            err === undefined
              ? page('Enter code', form)
              : page('Enter code', `<p id="error">${escapeHtml(err.message)}</p>`);
        },
        userCodeConfirmSource: async (ctx: KoaContext, form: string) => {
          ctx.body = page('Confirm device', form);
        },
        successSource: async (ctx: KoaContext) => {
          ctx.body = page(
            'Sign-in Success',
            '<p id="device-approved">You may now close this window.</p>',
          );
        },
      },
    },
  };
}

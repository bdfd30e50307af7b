/**
 * Provider presets: `provider = office365 | outlook | gmail` in an account section stands for the
 * endpoints, scopes, redirect and client ID an account of that provider needs, so the shortest
 * working account is two lines. A preset only supplies defaults: every key the section sets itself
 * wins, and the loader validates preset values exactly like written ones.
 *
 * Sources: docs/providers.md, the project's collected provider facts (sections named in quotes);
 * facts it does not cover cite the provider's own documentation.
 */

import type { OAuthFlow, Protocol } from './types.js';

/** The values `provider` accepts. */
export const PROVIDER_NAMES = ['office365', 'outlook', 'gmail'] as const;

export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Account keys a preset can supply or insist on, spelled as in the INI file. */
export type PresetKey =
  'permission_url' | 'token_url' | 'oauth2_scope' | 'redirect_uri' | 'client_id' | 'client_secret';

/** Where a provider's mail servers are, for a `check` command and the documentation. */
export interface ServerHint {
  readonly host: string;
  readonly port: number;
  /** `implicit`: TLS from the first byte; `starttls`: plain, then upgraded (SMTP submission). */
  readonly tls: 'implicit' | 'starttls';
}

export type ProviderServers = Readonly<Record<Protocol, ServerHint>>;

/** What a preset contributes to one account section. */
export interface ProviderPreset {
  /** INI key → value; used only where the section leaves the key out or empty. */
  readonly defaults: ReadonlyMap<PresetKey, string>;
  /**
   * Keys the user must set themselves with this provider and flow, each with the whole "missing"
   * message (what the key is and how to get a value), because the generic hint would not help.
   */
  readonly missingKeyProblems: ReadonlyMap<PresetKey, string>;
}

/** What the account section chose that a preset depends on. */
export interface PresetChoices {
  readonly flow: OAuthFlow;
  /** The section's `tenant` key (Microsoft presets only), as written. */
  readonly tenant?: string;
}

/**
 * A provider and flow that cannot work together, or a bad `tenant`. The loader reports it as a
 * ConfigError against {@link ProviderPresetError.key}.
 */
export class ProviderPresetError extends Error {
  override readonly name = 'ProviderPresetError';

  constructor(
    /** The key the user should change. */
    readonly key: string,
    /** What is wrong and what to do, without location. */
    readonly problem: string,
  ) {
    super(problem);
  }
}

// --- Microsoft ------------------------------------------------------------------------------

/** docs/providers.md "Office 365 / Outlook.com": v2 endpoints under a tenant. */
const MICROSOFT_AUTHORITY = 'https://login.microsoftonline.com';

/**
 * docs/providers.md "Office 365 / Outlook.com": IMAP, POP and SMTP delegated scopes plus
 * `offline_access` (no refresh token without it). No `openid`: an id_token from `common` carries a
 * per-tenant issuer that fails openid-client's issuer check.
 */
const MICROSOFT_DELEGATED_SCOPE = [
  'https://outlook.office.com/IMAP.AccessAsUser.All',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office.com/SMTP.Send',
  'offline_access',
].join(' ');

/**
 * App-only (client credentials) access to IMAP/POP/SMTP asks for the resource's `.default` scope and
 * must use the organisation's own tenant. Source: Microsoft Learn, "Authenticate an IMAP, POP or SMTP
 * connection using OAuth", section "Use client credentials grant flow to authenticate SMTP, IMAP
 * and POP connections".
 */
const MICROSOFT_APP_ONLY_SCOPE = 'https://outlook.office365.com/.default';

/**
 * docs/providers.md "Office 365 / Outlook.com", public client IDs: Thunderbird's, no secret, PKCE, often
 * pre-consented by tenant admins; its redirect must be exactly `https://localhost`
 * (`http://localhost:PORT` fails with AADSTS50011).
 */
const THUNDERBIRD_CLIENT_ID = '9e5f94bc-e8a4-4e73-b8be-63364c29d753';
const THUNDERBIRD_REDIRECT_URI = 'https://localhost';

/** docs/providers.md "Office 365 / Outlook.com": the tenant names that are not one organisation. */
const MULTI_TENANT_NAMES = ['common', 'organizations', 'consumers'] as const;

const TENANT_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Microsoft also accepts a tenant's verified domain name in place of its GUID (Microsoft Learn,
 * "Microsoft identity platform and OAuth 2.0 authorization code flow", the `tenant` parameter).
 * Letters, digits, hyphens and dots only, so the value cannot change the endpoint's path.
 */
const TENANT_DOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;

function microsoftEndpoint(tenant: string, endpoint: 'authorize' | 'token'): string {
  return `${MICROSOFT_AUTHORITY}/${tenant}/oauth2/v2.0/${endpoint}`;
}

function checkTenant(tenant: string): void {
  const known = (MULTI_TENANT_NAMES as readonly string[]).includes(tenant.toLowerCase());
  if (!known && !TENANT_GUID.test(tenant) && !TENANT_DOMAIN.test(tenant)) {
    throw new ProviderPresetError(
      'tenant',
      `${JSON.stringify(tenant)} is not a Microsoft tenant; use ${MULTI_TENANT_NAMES.join(', ')}, ` +
        'your directory (tenant) ID (a GUID) or a verified domain such as contoso.onmicrosoft.com',
    );
  }
}

/** The delegated preset shared by `office365` and `outlook`; only the default tenant differs. */
function microsoftDelegated(tenant: string): ProviderPreset {
  return {
    defaults: new Map<PresetKey, string>([
      // The device flow reuses these: with permission_url ending in /authorize, src/oauth derives
      // the device endpoint from token_url (…/{tenant}/oauth2/v2.0/devicecode).
      ['permission_url', microsoftEndpoint(tenant, 'authorize')],
      ['token_url', microsoftEndpoint(tenant, 'token')],
      ['oauth2_scope', MICROSOFT_DELEGATED_SCOPE],
      ['redirect_uri', THUNDERBIRD_REDIRECT_URI],
      ['client_id', THUNDERBIRD_CLIENT_ID],
    ]),
    missingKeyProblems: new Map(),
  };
}

/**
 * App-only access has no user to sign in and no public client: the organisation registers its own
 * application with a secret, and the token must come from its tenant, never `common`.
 */
function office365ClientCredentials(tenant: string | undefined): ProviderPreset {
  if (
    tenant !== undefined &&
    (MULTI_TENANT_NAMES as readonly string[]).includes(tenant.toLowerCase())
  ) {
    throw new ProviderPresetError(
      'tenant',
      `"${tenant}" is not one organisation, and the client_credentials flow needs one; ` +
        'set tenant to your directory (tenant) ID or verified domain',
    );
  }
  const defaults = new Map<PresetKey, string>([['oauth2_scope', MICROSOFT_APP_ONLY_SCOPE]]);
  const missingKeyProblems = new Map<PresetKey, string>([
    [
      'client_id',
      "missing; the client_credentials flow needs your own app registration (Thunderbird's public client " +
        'cannot be used without a user): set client_id to its Application (client) ID, and grant it the ' +
        'Office 365 Exchange Online application permissions IMAP.AccessAsApp, POP.AccessAsApp or SMTP.SendAsApp',
    ],
  ]);
  if (tenant === undefined) {
    missingKeyProblems.set(
      'token_url',
      'missing; the client_credentials flow cannot use the common endpoint: set tenant to your directory ' +
        '(tenant) ID so provider = office365 can build it, or set token_url to ' +
        microsoftEndpoint('<tenant>', 'token'),
    );
  } else {
    defaults.set('permission_url', microsoftEndpoint(tenant, 'authorize'));
    defaults.set('token_url', microsoftEndpoint(tenant, 'token'));
  }
  return { defaults, missingKeyProblems };
}

function office365(choices: PresetChoices): ProviderPreset {
  switch (choices.flow) {
    case 'client_credentials':
      return office365ClientCredentials(choices.tenant);
    case 'service_account':
      throw unsupportedFlow('office365', choices.flow, 'service accounts are a Google concept');
    case 'password':
      // Microsoft Learn, "OAuth 2.0 resource owner password credentials": the grant works only
      // with a tenant-specific or the `organizations` endpoint, never `common`.
      return microsoftDelegated(choices.tenant ?? 'organizations');
    default:
      return microsoftDelegated(choices.tenant ?? 'common');
  }
}

/**
 * Personal Outlook.com / Hotmail accounts: the `consumers` tenant, same scopes and client
 * (docs/providers.md "Office 365 / Outlook.com").
 */
function outlook(choices: PresetChoices): ProviderPreset {
  switch (choices.flow) {
    case 'authorization_code':
    case 'device':
      return microsoftDelegated(choices.tenant ?? 'consumers');
    case 'client_credentials':
      throw unsupportedFlow(
        'outlook',
        choices.flow,
        'personal Microsoft accounts have no app-only access',
      );
    case 'password':
      // Microsoft Learn, "Microsoft identity platform and OAuth 2.0 Resource Owner Password Credentials".
      throw unsupportedFlow(
        'outlook',
        choices.flow,
        'Microsoft accepts passwords only for work or school accounts',
      );
    case 'service_account':
      throw unsupportedFlow('outlook', choices.flow, 'service accounts are a Google concept');
  }
}

// --- Google ---------------------------------------------------------------------------------

/** Google's endpoints and the only scope covering IMAP, POP and SMTP (docs/providers.md "Gmail"). */
const GOOGLE_AUTHORIZATION_ENDPOINT = 'https://accounts.google.com/o/oauth2/auth';
const GOOGLE_TOKEN_ENDPOINT = 'https://oauth2.googleapis.com/token';
const GMAIL_SCOPE = 'https://mail.google.com/';

/**
 * docs/providers.md "Gmail": the out-of-band redirect is dead, loopback redirects still work, so a
 * headless user copies the failed `http://localhost/?code=…` address from the browser and pastes it.
 */
const GOOGLE_LOOPBACK_REDIRECT = 'http://localhost';

/**
 * Google has no client ID that every user may use, so each user registers their own "Desktop app"
 * client; its secret is sent but not confidential, and apps left in "Testing" get refresh tokens
 * that die after 7 days (docs/providers.md "Gmail").
 */
const GOOGLE_OWN_CLIENT =
  'provider = gmail needs your own OAuth client, because Google offers no public client that everyone may use: ' +
  'in Google Cloud Console (APIs & Services > Credentials) create an OAuth client ID of type "Desktop app", ' +
  "then set client_id and client_secret to its ID and secret (a desktop app's secret is not confidential); " +
  'publish the app ("In production"), or its refresh tokens expire after 7 days';

function gmail(choices: PresetChoices): ProviderPreset {
  if (choices.tenant !== undefined) {
    throw new ProviderPresetError(
      'tenant',
      'is a Microsoft setting and means nothing with provider = gmail; remove it',
    );
  }
  const endpointsAndScope: [PresetKey, string][] = [
    ['permission_url', GOOGLE_AUTHORIZATION_ENDPOINT],
    ['token_url', GOOGLE_TOKEN_ENDPOINT],
    ['oauth2_scope', GMAIL_SCOPE],
  ];
  switch (choices.flow) {
    case 'authorization_code':
      return {
        defaults: new Map([...endpointsAndScope, ['redirect_uri', GOOGLE_LOOPBACK_REDIRECT]]),
        missingKeyProblems: new Map([
          ['client_id', `missing; ${GOOGLE_OWN_CLIENT}`],
          ['client_secret', `missing; ${GOOGLE_OWN_CLIENT}`],
        ]),
      };
    case 'service_account':
      // Workspace domain-wide delegation: the key file names the rest.
      return { defaults: new Map(endpointsAndScope), missingKeyProblems: new Map() };
    case 'device':
      // docs/providers.md "Gmail": Google's device flow rejects Gmail scopes.
      throw unsupportedFlow(
        'gmail',
        choices.flow,
        "Google's device flow does not allow the Gmail scope",
      );
    case 'client_credentials':
    case 'password':
      throw unsupportedFlow('gmail', choices.flow, 'Google has no such grant for Gmail');
  }
}

// --- Shared ---------------------------------------------------------------------------------

function unsupportedFlow(
  provider: ProviderName,
  flow: OAuthFlow,
  reason: string,
): ProviderPresetError {
  const supported = SUPPORTED_FLOWS[provider].join(', ');
  return new ProviderPresetError(
    'oauth2_flow',
    `"${flow}" does not work with provider = ${provider} (${reason}); use ${supported}`,
  );
}

const SUPPORTED_FLOWS: Readonly<Record<ProviderName, readonly OAuthFlow[]>> = {
  office365: ['authorization_code', 'device', 'client_credentials', 'password'],
  outlook: ['authorization_code', 'device'],
  gmail: ['authorization_code', 'service_account'],
};

const PRESETS: Readonly<Record<ProviderName, (choices: PresetChoices) => ProviderPreset>> = {
  office365,
  outlook,
  gmail,
};

/**
 * Hosts from docs/providers.md "Office 365 / Outlook.com" (personal accounts submit through
 * `smtp-mail.outlook.com`) and "Gmail" (`smtp.gmail.com` also listens on 465 with implicit TLS).
 */
const SERVERS: Readonly<Record<ProviderName, ProviderServers>> = {
  office365: {
    IMAP: { host: 'outlook.office365.com', port: 993, tls: 'implicit' },
    POP: { host: 'outlook.office365.com', port: 995, tls: 'implicit' },
    SMTP: { host: 'smtp.office365.com', port: 587, tls: 'starttls' },
  },
  outlook: {
    IMAP: { host: 'outlook.office365.com', port: 993, tls: 'implicit' },
    POP: { host: 'outlook.office365.com', port: 995, tls: 'implicit' },
    SMTP: { host: 'smtp-mail.outlook.com', port: 587, tls: 'starttls' },
  },
  gmail: {
    IMAP: { host: 'imap.gmail.com', port: 993, tls: 'implicit' },
    POP: { host: 'pop.gmail.com', port: 995, tls: 'implicit' },
    SMTP: { host: 'smtp.gmail.com', port: 587, tls: 'starttls' },
  },
};

/**
 * Reads a `provider` value. Case is ignored (`Gmail` is what people type).
 *
 * @returns undefined for values that name no preset
 */
export function parseProviderName(value: string): ProviderName | undefined {
  const folded = value.toLowerCase();
  return PROVIDER_NAMES.find((name) => name === folded);
}

/**
 * The defaults and requirements `provider = …` brings to an account using `choices.flow`.
 *
 * @throws ProviderPresetError when the provider cannot work with the flow, or `tenant` is invalid
 *   or given to a provider without tenants
 */
export function providerPreset(provider: ProviderName, choices: PresetChoices): ProviderPreset {
  if (choices.tenant !== undefined && provider !== 'gmail') checkTenant(choices.tenant);
  return PRESETS[provider](choices);
}

/** Where the provider's IMAP, POP and SMTP servers listen, and how they speak TLS. */
export function providerServers(provider: ProviderName): ProviderServers {
  return SERVERS[provider];
}

/**
 * Turns an email-oauth2-proxy style INI file into a validated {@link ProxyConfig}. Everything is
 * checked here, once, so the rest of the proxy never meets a half-valid account at 3 a.m.; the
 * first problem stops loading with one {@link ConfigError} naming file, section and key.
 *
 * Conventions that hold for every key: an empty value (`client_secret =`) means "not set", and keys
 * this proxy does not know are ignored (email-oauth2-proxy files carry GUI and plugin settings).
 */

import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { parseHostPort } from './host-port.js';
import { dirname, resolve } from 'node:path';

import { parseBoolean, parseIni } from './configparser.js';
import type { IniDocument } from './configparser.js';
import { ConfigError } from './errors.js';
import { isLoopbackHost } from './loopback.js';
import {
  parseProviderName,
  PROVIDER_NAMES,
  providerPreset,
  ProviderPresetError,
} from './providers.js';
import type { ProviderPreset } from './providers.js';
import type {
  AccountConfig,
  CertificateCredentialFiles,
  GlobalOptions,
  OAuthFlow,
  Protocol,
  ProxyConfig,
  ServerConfig,
  StoredTokenFields,
} from './types.js';
import { STORED_TOKEN_FIELDS } from './types.js';

/** The section holding proxy-wide options, as email-oauth2-proxy names it. */
const GLOBAL_SECTION = 'emailproxy';

/** `IMAP-1993`: the prefix picks the protocol (any case), the rest must be the local port. */
const SERVER_SECTION = /^(IMAP|POP|SMTP)-(.*)$/is;

const DEFAULT_SERVER_PORT: Readonly<Record<Protocol, number>> = { IMAP: 993, POP: 995, SMTP: 587 };

const OAUTH_FLOWS: readonly OAuthFlow[] = [
  'authorization_code',
  'device',
  'client_credentials',
  'password',
  'service_account',
];

/** What each account key is, for "missing" messages: the user learns what to put there. */
const ACCOUNT_KEY_HINTS = {
  permission_url:
    "the provider's authorization endpoint, e.g. https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
  token_url:
    "the provider's token endpoint, e.g. https://login.microsoftonline.com/common/oauth2/v2.0/token",
  oauth2_scope:
    'the space-separated scopes to request, e.g. https://outlook.office.com/IMAP.AccessAsUser.All offline_access',
  redirect_uri:
    'the address the provider sends the browser back to after sign-in, e.g. https://localhost',
  client_id: 'the application (client) ID registered with the provider',
  client_secret: "the application's client secret",
} as const;

type AccountKey = keyof typeof ACCOUNT_KEY_HINTS;

/**
 * Keys each flow cannot work without. `permission_url` is the device authorization endpoint for
 * the device flow, as in email-oauth2-proxy. A service account's `client_secret` holds its key.
 */
const REQUIRED_KEYS: Readonly<Record<OAuthFlow, readonly AccountKey[]>> = {
  authorization_code: ['permission_url', 'token_url', 'oauth2_scope', 'redirect_uri', 'client_id'],
  device: ['permission_url', 'token_url', 'oauth2_scope', 'client_id'],
  client_credentials: ['token_url', 'oauth2_scope', 'client_id', 'client_secret'],
  password: ['token_url', 'oauth2_scope', 'client_id'],
  service_account: ['oauth2_scope', 'client_id', 'client_secret'],
};

/**
 * Reads and validates the configuration file.
 *
 * @param path - as the user gave it; messages repeat it verbatim, {@link ProxyConfig.file} is absolute
 * @throws ConfigError when the file cannot be read, is not UTF-8 text, or is invalid
 */
export async function loadConfig(path: string): Promise<ProxyConfig> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ConfigError({ file: path, problem: describeReadFailure(error), cause: error });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ConfigError({
      file: path,
      problem: 'not UTF-8 text; save the file as UTF-8',
      cause: error,
    });
  }
  return parseConfig(text, path);
}

function describeReadFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'cannot read the configuration file: it does not exist; check the path or create the file';
    case 'EACCES':
    case 'EPERM':
      return 'cannot read the configuration file: permission denied; make it readable by the user running the proxy';
    case 'EISDIR':
      return 'cannot read the configuration file: it is a directory; give the path of the file itself';
    default:
      return `cannot read the configuration file (${code ?? String(error)}); check the path and its permissions`;
  }
}

/**
 * Validates configuration text. Sections are classified like email-oauth2-proxy does: names with
 * `@` are accounts, `IMAP-…`/`POP-…`/`SMTP-…` are servers, `[emailproxy]` holds options, anything
 * else is ignored.
 *
 * Relative `local_certificate_path`/`local_key_path`/`server_ca_file`, `jwt_certificate_path`/
 * `jwt_key_path`, and a service account's key file (`client_id = file`), are resolved against the file's directory (email-oauth2-proxy uses its
 * working directory, which a service manager sets to `/`).
 *
 * @param file - the file name for messages; resolved to make {@link ProxyConfig.file}
 * @throws ConfigError at the first problem found
 */
export function parseConfig(text: string, file: string): ProxyConfig {
  const document = parseIni(text, file);
  const absoluteFile = resolve(file);
  const options = readOptions(document, file, dirname(absoluteFile));
  const servers: ServerConfig[] = [];
  const accounts: AccountConfig[] = [];

  for (const [name, values] of document) {
    const section = new SectionReader(file, name, values);
    if (name.includes('@')) {
      accounts.push(readAccount(section, options, dirname(absoluteFile)));
    } else if (SERVER_SECTION.test(name)) {
      servers.push(readServer(section, dirname(absoluteFile)));
    }
  }

  if (servers.length === 0) {
    throw new ConfigError({
      file,
      problem:
        'no server sections, so there is nothing to listen on; add one named after its protocol and local port, ' +
        'e.g. [IMAP-1993] with server_address = outlook.office365.com',
    });
  }
  assertDistinctPorts(file, servers);
  assertDistinctAccounts(file, accounts);
  if (!options.allowPlaintextNetworkLogins) assertNoPlaintextOnNetwork(file, servers);
  return { file: absoluteFile, servers, accounts, options };
}

function readOptions(document: IniDocument, file: string, configDirectory: string): GlobalOptions {
  const section = new SectionReader(
    file,
    GLOBAL_SECTION,
    document.get(GLOBAL_SECTION) ?? new Map(),
  );
  return {
    deleteAccountTokenOnPasswordError:
      section.boolean('delete_account_token_on_password_error') ?? false,
    encryptClientSecretOnFirstUse: section.boolean('encrypt_client_secret_on_first_use') ?? false,
    allowCatchAllAccounts: section.boolean('allow_catch_all_accounts') ?? false,
    useLoginPasswordAsClientCredentialsSecret:
      section.boolean('use_login_password_as_client_credentials_secret') ?? false,
    allowPlaintextNetworkLogins: section.boolean('allow_plaintext_network_logins') ?? false,
    metricsAddress: readMetricsAddress(section),
    cacheStore: readCacheStore(section, configDirectory),
  };
}

/** `cache_store`: a file path (relative to the config file's folder) or a `postgresql://` URL. */
function readCacheStore(section: SectionReader, configDirectory: string): string | undefined {
  const text = section.string('cache_store');
  if (text === undefined) return undefined;
  if (/^postgres(ql)?:\/\//i.test(text)) return text;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text))
    section.fail(
      'cache_store',
      `${JSON.stringify(text.split(':')[0])} stores are not supported (email-oauth2-proxy's aws: store, say); ` +
        'use a file path or a postgresql:// URL, and move tokens with "oauth2-mail-proxy tokens copy"',
    );
  return resolve(configDirectory, text);
}

function readMetricsAddress(section: SectionReader): { host: string; port: number } | undefined {
  const text = section.string('metrics_address');
  if (text === undefined) return undefined;
  return (
    parseHostPort(text) ??
    section.fail(
      'metrics_address',
      `${JSON.stringify(text)} is not [HOST:]PORT, e.g. 127.0.0.1:9431`,
    )
  );
}

/**
 * A listener reachable from other machines must offer TLS, or mail passwords would cross the
 * network in clear text (email-oauth2-proxy listens on all interfaces by default; we do not).
 */
function assertNoPlaintextOnNetwork(file: string, servers: readonly ServerConfig[]): void {
  for (const server of servers) {
    if (isLoopbackHost(server.localAddress) || server.localCertificatePath !== undefined) continue;
    throw new ConfigError({
      file,
      section: server.section,
      key: 'local_address',
      problem:
        `${server.localAddress} is reachable from other machines, and without TLS mail passwords would cross the network ` +
        `in clear text; set local_certificate_path and local_key_path, listen on 127.0.0.1, or (on a network you trust) ` +
        `set allow_plaintext_network_logins = True in [${GLOBAL_SECTION}]`,
    });
  }
}

function readServer(section: SectionReader, configDirectory: string): ServerConfig {
  const [, prefix = '', portText = ''] = SERVER_SECTION.exec(section.name) ?? [];
  const protocol = prefix.toUpperCase() as Protocol;
  const localPort = parsePort(portText);
  if (localPort === undefined) {
    section.fail(
      undefined,
      `${JSON.stringify(portText)} is not a port number (1-65535); name server sections ` +
        `PROTOCOL-LOCALPORT, e.g. [IMAP-1993]`,
    );
  }

  const serverAddress = section.string('server_address');
  if (serverAddress === undefined) {
    section.fail(
      'server_address',
      "missing; set it to the mail server's host name, e.g. outlook.office365.com",
    );
  }
  const serverStarttls = readServerStarttls(section, protocol);
  const localStarttls = section.boolean('local_starttls') ?? false;
  const certificate = section.string('local_certificate_path');
  const key = section.string('local_key_path');
  const serverCaFile = section.string('server_ca_file');
  const bothOrNeither = 'set both (the certificate and its private key) or neither';
  if (certificate !== undefined && key === undefined) {
    section.fail('local_certificate_path', `set without local_key_path; ${bothOrNeither}`);
  }
  if (key !== undefined && certificate === undefined) {
    section.fail('local_key_path', `set without local_certificate_path; ${bothOrNeither}`);
  }
  if (localStarttls && certificate === undefined) {
    section.fail(
      'local_starttls',
      'needs local_certificate_path and local_key_path (the certificate and key offered to local clients); ' +
        'set both or turn local_starttls off',
    );
  }

  return {
    section: section.name,
    protocol,
    localPort,
    localAddress: section.string('local_address') ?? '127.0.0.1',
    serverAddress,
    serverPort: section.port('server_port') ?? DEFAULT_SERVER_PORT[protocol],
    serverStarttls,
    localStarttls,
    ...(certificate === undefined
      ? {}
      : { localCertificatePath: resolve(configDirectory, certificate) }),
    ...(key === undefined ? {} : { localKeyPath: resolve(configDirectory, key) }),
    ...(serverCaFile === undefined ? {} : { serverCaFile: resolve(configDirectory, serverCaFile) }),
    proxyProtocolFrom: readProxyProtocolFrom(section),
  };
}

/** `proxy_protocol_from`: comma-separated addresses and CIDR ranges, IPv4 or IPv6. */
function readProxyProtocolFrom(section: SectionReader): readonly string[] | undefined {
  const text = section.string('proxy_protocol_from');
  if (text === undefined) return undefined;
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0)
    section.fail('proxy_protocol_from', 'is empty; name your load balancers, or remove the key');
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || rest.length > 0)
      section.fail(
        'proxy_protocol_from',
        `${JSON.stringify(entry)} is not an IP address or CIDR range (e.g. 10.0.0.5, 10.0.0.0/24, fd00::/8)`,
      );
  }
  return entries;
}

/** `server_starttls`, or its legacy spelling `starttls`; only SMTP upstreams are upgraded. */
function readServerStarttls(section: SectionReader, protocol: Protocol): boolean {
  const current = section.boolean('server_starttls');
  const legacy = section.boolean('starttls');
  if (current !== undefined && legacy !== undefined && current !== legacy) {
    section.fail(
      'starttls',
      'contradicts server_starttls (starttls is its old name); remove starttls',
    );
  }
  const starttls = current ?? legacy ?? false;
  if (starttls && protocol !== 'SMTP') {
    section.fail(
      current === undefined ? 'starttls' : 'server_starttls',
      `only SMTP upstreams are upgraded with STARTTLS (${protocol} connects with implicit TLS); remove it`,
    );
  }
  return starttls;
}

function readAccount(
  written: SectionReader,
  options: GlobalOptions,
  configDirectory: string,
): AccountConfig {
  if (written.name.startsWith('@') && !options.allowCatchAllAccounts) {
    written.fail(
      undefined,
      `catch-all account sections need allow_catch_all_accounts = True in [${GLOBAL_SECTION}]; ` +
        'set that option or name the section after a full email address',
    );
  }

  const flow = readFlow(written);
  const preset = readProviderPreset(written, flow);
  // From here on the preset's values stand in for keys the section leaves out, and are validated
  // (and blamed in messages) exactly like written ones.
  const section = preset === undefined ? written : written.withDefaults(preset.defaults);
  const writtenSecret = section.string('client_secret');
  // With client_id = file, client_secret is the path of a service account's key file.
  const keyFile =
    flow === 'service_account' && section.string('client_id')?.trim().toLowerCase() === 'file';
  const clientSecret =
    keyFile && writtenSecret ? resolve(configDirectory, writtenSecret) : writtenSecret;
  const clientSecretEncrypted = section.string('client_secret_encrypted');
  const secretFromLogin =
    flow === 'client_credentials' && options.useLoginPasswordAsClientCredentialsSecret;
  const certificateCredentials = readCertificateCredentials(section, configDirectory);
  // A service account's client_secret is its key, which no certificate replaces.
  const secretFromCertificate = flow !== 'service_account' && certificateCredentials !== undefined;
  const required = new Set<AccountKey>([
    ...REQUIRED_KEYS[flow],
    ...(preset?.missingKeyProblems.keys() ?? []),
  ]);
  for (const key of required) {
    const satisfied =
      section.string(key) !== undefined ||
      (key === 'client_secret' &&
        (clientSecretEncrypted !== undefined || secretFromLogin || secretFromCertificate));
    if (!satisfied) {
      section.fail(
        key,
        preset?.missingKeyProblems.get(key) ??
          `missing, and the ${flow} flow needs it; set it to ${hintFor(key, flow)}`,
      );
    }
  }

  const redirectListenAddress = section.string('redirect_listen_address');
  if (redirectListenAddress !== undefined)
    section.url('redirect_listen_address', { httpsUnlessLoopback: false });
  const tokensInConfig = readTokenFields(section);

  return {
    name: section.name,
    permissionUrl: section.url('permission_url', { httpsUnlessLoopback: true }) ?? '',
    tokenUrl: section.url('token_url', { httpsUnlessLoopback: true }) ?? '',
    scope: (section.string('oauth2_scope') ?? '').split(/\s+/).filter(Boolean).join(' '),
    redirectUri: section.url('redirect_uri', { httpsUnlessLoopback: false }) ?? '',
    ...(redirectListenAddress === undefined ? {} : { redirectListenAddress }),
    clientId: section.string('client_id') ?? '',
    ...(clientSecret === undefined ? {} : { clientSecret }),
    ...(clientSecretEncrypted === undefined ? {} : { clientSecretEncrypted }),
    ...(certificateCredentials === undefined ? {} : { certificateCredentials }),
    flow,
    // A client without a secret (or certificate) is a public client, and public clients must use PKCE.
    usePkce:
      section.boolean('use_pkce') ??
      (clientSecret === undefined &&
        clientSecretEncrypted === undefined &&
        certificateCredentials === undefined),
    ...(tokensInConfig === undefined ? {} : { tokensInConfig }),
  };
}

/**
 * `jwt_certificate_path` and `jwt_key_path` (email-oauth2-proxy's keys for Microsoft's certificate
 * credentials): both or neither. The files are read when a token is requested, so a renewed
 * certificate needs no restart; here only the paths are resolved.
 */
function readCertificateCredentials(
  section: SectionReader,
  configDirectory: string,
): CertificateCredentialFiles | undefined {
  const certificate = section.string('jwt_certificate_path');
  const key = section.string('jwt_key_path');
  if (certificate === undefined && key === undefined) return undefined;
  const bothOrNeither =
    'certificate credentials need both the certificate and its private key; set both or neither';
  if (key === undefined) {
    section.fail(
      'jwt_key_path',
      `missing, and jwt_certificate_path is set: ${bothOrNeither} (jwt_key_path is the PEM private key, unencrypted)`,
    );
  }
  if (certificate === undefined) {
    section.fail(
      'jwt_certificate_path',
      `missing, and jwt_key_path is set: ${bothOrNeither} (jwt_certificate_path is the PEM certificate uploaded to the app registration)`,
    );
  }
  return {
    certificatePath: resolve(configDirectory, certificate),
    keyPath: resolve(configDirectory, key),
  };
}

/**
 * Our extension: `provider = office365 | outlook | gmail` (see providers.ts), and `tenant` for the
 * Microsoft ones. Neither key exists in email-oauth2-proxy, so a `tenant` that would change nothing
 * is an error rather than silently ignored.
 */
function readProviderPreset(section: SectionReader, flow: OAuthFlow): ProviderPreset | undefined {
  const value = section.string('provider');
  const tenant = section.string('tenant');
  if (value === undefined) {
    if (tenant !== undefined) {
      section.fail(
        'tenant',
        'only applies with provider = office365 or outlook; add the provider, or remove tenant and ' +
          'write the tenant into permission_url and token_url',
      );
    }
    return undefined;
  }
  const provider = parseProviderName(value);
  if (provider === undefined) {
    section.fail(
      'provider',
      `${JSON.stringify(value)} is not a known provider; use one of ${PROVIDER_NAMES.join(', ')}, or remove ` +
        'provider and set permission_url, token_url, oauth2_scope, redirect_uri and client_id yourself',
    );
  }
  const bothUrlsWritten =
    section.string('permission_url') !== undefined && section.string('token_url') !== undefined;
  if (tenant !== undefined && bothUrlsWritten) {
    section.fail(
      'tenant',
      'has no effect, because permission_url and token_url are both set (they win over the preset); ' +
        'write the tenant into those URLs and remove tenant, or remove the URLs',
    );
  }
  try {
    return providerPreset(provider, { flow, ...(tenant === undefined ? {} : { tenant }) });
  } catch (error) {
    if (error instanceof ProviderPresetError) section.fail(error.key, error.problem);
    throw error;
  }
}

function hintFor(key: AccountKey, flow: OAuthFlow): string {
  if (key === 'permission_url' && flow === 'device') {
    return (
      "the provider's device authorization endpoint, " +
      'e.g. https://login.microsoftonline.com/common/oauth2/v2.0/devicecode'
    );
  }
  if (key === 'client_secret' && flow === 'client_credentials') {
    const alternative = `use_login_password_as_client_credentials_secret = True in [${GLOBAL_SECTION}]`;
    return `${ACCOUNT_KEY_HINTS.client_secret} (or set jwt_certificate_path and jwt_key_path for certificate credentials, or ${alternative})`;
  }
  if (key === 'client_secret' && flow === 'service_account') {
    return "the service account's JSON key or the path to its key file";
  }
  return ACCOUNT_KEY_HINTS[key];
}

function readFlow(section: SectionReader): OAuthFlow {
  const value = section.string('oauth2_flow');
  if (value === undefined) return 'authorization_code';
  const flow = OAUTH_FLOWS.find((candidate) => candidate === value);
  if (flow === undefined) {
    section.fail(
      'oauth2_flow',
      `${JSON.stringify(value)} is not a supported flow; use one of ${OAUTH_FLOWS.join(', ')}`,
    );
  }
  return flow;
}

function readTokenFields(section: SectionReader): StoredTokenFields | undefined {
  const fields: StoredTokenFields = {};
  for (const key of STORED_TOKEN_FIELDS) {
    const value = section.string(key);
    if (value !== undefined) fields[key] = value;
  }
  return Object.keys(fields).length === 0 ? undefined : fields;
}

function assertDistinctPorts(file: string, servers: readonly ServerConfig[]): void {
  const byPort = new Map<number, ServerConfig>();
  for (const server of servers) {
    const earlier = byPort.get(server.localPort);
    if (earlier !== undefined) {
      throw new ConfigError({
        file,
        section: server.section,
        problem:
          `local port ${server.localPort} is already used by [${earlier.section}]; ` +
          'give each server section its own port',
      });
    }
    byPort.set(server.localPort, server);
  }
}

/** Login names are matched case-insensitively, so two sections differing only in case are ambiguous. */
function assertDistinctAccounts(file: string, accounts: readonly AccountConfig[]): void {
  const byName = new Map<string, AccountConfig>();
  for (const account of accounts) {
    const folded = account.name.toLowerCase();
    const earlier = byName.get(folded);
    if (earlier !== undefined) {
      throw new ConfigError({
        file,
        section: account.name,
        problem: `same account as [${earlier.name}] (login names are matched ignoring case); merge the two sections`,
      });
    }
    byName.set(folded, account);
  }
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Typed access to one section's values, failing with the section and key in the message. */
class SectionReader {
  constructor(
    private readonly file: string,
    readonly name: string,
    private readonly values: ReadonlyMap<string, string>,
  ) {}

  /** The same section with `defaults` filling the keys it leaves out or empty. */
  withDefaults(defaults: ReadonlyMap<string, string>): SectionReader {
    const merged = new Map(defaults);
    for (const [key, value] of this.values) {
      if (value !== '' || !merged.has(key)) merged.set(key, value);
    }
    return new SectionReader(this.file, this.name, merged);
  }

  fail(key: string | undefined, problem: string): never {
    throw new ConfigError({ file: this.file, section: this.name, key, problem });
  }

  /** The value, or undefined when absent or empty. */
  string(key: string): string | undefined {
    const value = this.values.get(key);
    return value === undefined || value === '' ? undefined : value;
  }

  boolean(key: string): boolean | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const parsed = parseBoolean(value);
    if (parsed === undefined) {
      this.fail(
        key,
        `${JSON.stringify(value)} is not a boolean; use True or False (or yes/no, on/off, 1/0)`,
      );
    }
    return parsed;
  }

  port(key: string): number | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    return (
      parsePort(value) ?? this.fail(key, `${JSON.stringify(value)} is not a port number (1-65535)`)
    );
  }

  /** An http(s) URL, returned as written (normalising could break a provider's exact match on redirect_uri). */
  url(key: string, rules: { readonly httpsUnlessLoopback: boolean }): string | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return this.fail(
        key,
        `${JSON.stringify(value)} is not a URL; write it in full, starting with https://`,
      );
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      this.fail(
        key,
        `${JSON.stringify(value)} is not an http(s) URL; write it in full, starting with https://`,
      );
    }
    if (
      rules.httpsUnlessLoopback &&
      parsed.protocol !== 'https:' &&
      !isLoopbackHost(parsed.hostname)
    ) {
      this.fail(
        key,
        `${JSON.stringify(value)} must use https:// (plain http is only allowed for loopback hosts: ` +
          '127.0.0.0/8, ::1, localhost); tokens and secrets travel over this connection',
      );
    }
    return value;
  }
}

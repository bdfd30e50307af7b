import { stat } from 'node:fs/promises';
import { isLoopbackHost } from '../config/loopback.js';
import { googleDeviceFlowProblem } from '../doctor/provider-facts.js';
import { hasTokens } from '../tokens/vault/vault.js';
import { checkSecretLocation } from '../tokens/atomic-write.js';
import type { AccountConfig, GlobalOptions, ProxyConfig } from '../config/types.js';
import {
  loadCertificateCredentials,
  OAuthError,
  readServiceAccountKey,
  serviceAccountKeyType,
} from '../oauth/index.js';

/**
 * Things that deserve the owner's attention, logged once at start: files holding secrets that
 * others can read (service account key files included), listeners the owner chose to expose
 * without TLS, service accounts whose key is unusable, certificate credentials that are unusable
 * or overridden by a secret, and email-oauth2-proxy options it does not apply.
 */
export async function startupWarnings(config: ProxyConfig, tokenStore: string): Promise<string[]> {
  const warnings: string[] = [];
  // Throws, rather than warns, where another user could plant a link or a file at the store's path.
  const storeLocation = await checkSecretLocation(tokenStore);
  if (storeLocation !== undefined) warnings.push(storeLocation);
  const configSecrets = secretsIn(config);
  for (const [path, what] of [
    [config.file, configSecrets],
    [tokenStore, 'it holds the encrypted tokens'],
  ] as const) {
    // A config without secrets (the shipped example, say) may be as readable as any other file.
    if (what === undefined) continue;
    warnings.push(...(await readableByOthers(path, what)));
  }
  for (const server of config.servers) {
    if (!isLoopbackHost(server.localAddress) && server.localCertificatePath === undefined) {
      warnings.push(
        `[${server.section}] listens on ${server.localAddress} without TLS (allow_plaintext_network_logins is on): ` +
          'mail passwords cross the network in clear text',
      );
    }
  }
  for (const account of config.accounts) {
    const deviceProblem = googleDeviceFlowProblem(account);
    if (deviceProblem !== undefined) warnings.push(deviceProblem);
  }
  warnings.push(...(await serviceAccountWarnings(config.accounts)));
  warnings.push(...(await certificateCredentialWarnings(config.accounts, config.options)));
  if (config.options.encryptClientSecretOnFirstUse) {
    warnings.push(
      'encrypt_client_secret_on_first_use in [emailproxy] is not applied: oauth2-mail-proxy never rewrites the config file, ' +
        'so client_secret stays as written (client_secret_encrypted is still read)',
    );
  }
  return warnings;
}

/** What secrets the config file itself holds, said as the warning's reason; undefined for none. */
function secretsIn(config: ProxyConfig): string | undefined {
  const holdsSecret = (account: AccountConfig): boolean =>
    Boolean(account.clientSecret) || account.clientSecretEncrypted !== undefined;
  const held: string[] = [];
  if (config.accounts.some((account) => account.flow !== 'service_account' && holdsSecret(account)))
    held.push('client secrets');
  // A service account's key opens every mailbox delegated to it; only a path to it is no secret.
  if (
    config.accounts.some(
      (account) =>
        account.flow === 'service_account' && holdsSecret(account) && !namesKeyFile(account),
    )
  ) {
    held.push('service account keys');
  }
  // tokensInConfig also carries token_salt and client_secret_encrypted; only real tokens count here.
  if (config.accounts.some((account) => hasTokens(account.tokensInConfig))) held.push('tokens');
  if (held.length === 0) return undefined;
  return `it holds ${held.length === 1 ? held[0] : `${held.slice(0, -1).join(', ')} and ${held.at(-1)}`}`;
}

/** `client_id = file` with the path in plain `client_secret` (not encrypted). */
function namesKeyFile(account: AccountConfig): boolean {
  return account.clientId.trim().toLowerCase() === 'file' && Boolean(account.clientSecret);
}

/**
 * Service accounts whose key cannot be used (logins would be refused, so say it now), and key
 * files others can read. A key in `client_secret_encrypted` is only checked at a login, which
 * brings the password that decrypts it.
 */
async function serviceAccountWarnings(accounts: readonly AccountConfig[]): Promise<string[]> {
  const warnings: string[] = [];
  const keyFiles = new Set<string>();
  for (const account of accounts.filter((candidate) => candidate.flow === 'service_account')) {
    try {
      if (account.clientSecret) await readServiceAccountKey(account);
      else serviceAccountKeyType(account);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      warnings.push(
        `[${account.name}] ${err.message}: its logins are refused until that is fixed. ${err.hint}`,
      );
      continue;
    }
    if (namesKeyFile(account)) keyFiles.add(account.clientSecret?.trim() ?? '');
  }
  for (const path of keyFiles)
    warnings.push(...(await readableByOthers(path, "it holds a service account's private key")));
  return warnings;
}

/**
 * Certificate credentials (`jwt_certificate_path` / `jwt_key_path`) that a secret overrides (as in
 * email-oauth2-proxy, the secret wins), that cannot be used (logins would be refused, so say it
 * now), whose certificate has expired, and private keys others can read.
 */
async function certificateCredentialWarnings(
  accounts: readonly AccountConfig[],
  options: GlobalOptions,
): Promise<string[]> {
  const warnings: string[] = [];
  const keyFiles = new Set<string>();
  const files = 'certificate credentials (jwt_certificate_path, jwt_key_path)';
  for (const account of accounts) {
    const credentials = account.certificateCredentials;
    if (credentials === undefined || account.flow === 'service_account') continue;
    keyFiles.add(credentials.keyPath);
    if (account.clientSecret || account.clientSecretEncrypted !== undefined) {
      const secret = account.clientSecret ? 'client_secret' : 'client_secret_encrypted';
      warnings.push(
        `[${account.name}] has both ${secret} and ${files}: the client secret is used; remove ${secret} to use the certificate`,
      );
      continue;
    }
    if (
      account.flow === 'client_credentials' &&
      options.useLoginPasswordAsClientCredentialsSecret
    ) {
      warnings.push(
        `[${account.name}] has ${files}, but use_login_password_as_client_credentials_secret is on in [emailproxy]: ` +
          "the login password is sent as the app's client secret instead; turn that option off to use the certificate",
      );
      continue;
    }
    try {
      const loaded = await loadCertificateCredentials(credentials);
      if (loaded.notAfter.getTime() < Date.now()) {
        warnings.push(
          `[${account.name}] the certificate ${credentials.certificatePath} expired on ${loaded.notAfter.toISOString()}: ` +
            'the identity provider will refuse its assertions; make a new one and upload it to the app registration',
        );
      }
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      warnings.push(
        `[${account.name}] ${err.message}: its token requests fail until that is fixed. ${err.hint}`,
      );
    }
  }
  for (const path of keyFiles)
    warnings.push(
      ...(await readableByOthers(path, 'it holds the private key of certificate credentials')),
    );
  return warnings;
}

/** The warning for a file holding secrets (`what`) that group or others can read; none if it cannot be read. */
export async function readableByOthers(path: string, what: string): Promise<string[]> {
  const mode = await stat(path).then(
    (info) => info.mode,
    () => undefined,
  );
  if (mode === undefined || (mode & 0o077) === 0) return [];
  return [
    `${path} is readable by other users (mode ${(mode & 0o777).toString(8)}) and ${what}; run: chmod 600 ${path}`,
  ];
}

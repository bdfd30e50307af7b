import { stat } from 'node:fs/promises';
import { isLoopbackHost } from '../config/loopback.js';
import type { ProxyConfig } from '../config/types.js';
import { serviceAccountUnsupported } from '../oauth/index.js';

/**
 * Things that deserve the owner's attention, logged once at start: files holding secrets that
 * others can read, listeners the owner chose to expose without TLS, accounts whose flow the
 * proxy accepts in the config but cannot serve, and email-oauth2-proxy options it does not apply.
 */
export async function startupWarnings(config: ProxyConfig, tokenStore: string): Promise<string[]> {
  const warnings: string[] = [];
  const configSecrets = secretsIn(config);
  for (const [path, what] of [
    [config.file, configSecrets],
    [tokenStore, 'it holds the encrypted tokens'],
  ] as const) {
    // A config without secrets (the shipped example, say) may be as readable as any other file.
    if (what === undefined) continue;
    const mode = await stat(path).then((info) => info.mode, () => undefined);
    if (mode !== undefined && (mode & 0o077) !== 0) {
      warnings.push(`${path} is readable by other users (mode ${(mode & 0o777).toString(8)}) and ${what}; run: chmod 600 ${path}`);
    }
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
    if (account.flow === 'service_account') {
      const unsupported = serviceAccountUnsupported(`[${account.name}]`);
      warnings.push(`${unsupported.message}: logins for it are refused. ${unsupported.hint}`);
    }
  }
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
  const secrets = config.accounts.some((account) => Boolean(account.clientSecret) || account.clientSecretEncrypted !== undefined);
  // tokensInConfig also carries token_salt and client_secret_encrypted; only real tokens count here.
  const tokens = config.accounts.some((account) => account.tokensInConfig?.access_token !== undefined || account.tokensInConfig?.refresh_token !== undefined);
  if (secrets && tokens) return 'it holds client secrets and tokens';
  if (secrets) return 'it holds client secrets';
  if (tokens) return 'it holds tokens';
  return undefined;
}

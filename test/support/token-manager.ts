/**
 * A token manager as the daemon builds one, for unit tests: silent, no waiting for sign-ins,
 * tokens kept in `store`. Tests pass what their case is about.
 */
import { pino } from 'pino';
import type { TokenStore } from '../../src/tokens/stores/token-store.js';
import { TokenManager, type TokenManagerOptions } from '../../src/tokens/token-manager.js';
import { Vault } from '../../src/tokens/vault/vault.js';

export function testTokenManager(
  store: TokenStore,
  options: Partial<TokenManagerOptions> = {},
): TokenManager {
  return new TokenManager({
    store,
    vault: new Vault(),
    log: pino({ level: 'silent' }),
    oauth: { requestTimeoutMs: 5_000 },
    refreshMarginSeconds: 300,
    loginWaitMs: 0,
    deleteTokensOnWrongPassword: false,
    howToAuthorize: (account) => `run: oauth2-mail-proxy authorize ${account}`,
    ...options,
  });
}

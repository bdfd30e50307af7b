import { isCatchAll } from '../config/accounts.js';
import type { ProxyConfig } from '../config/types.js';
import type { ControlHandler } from '../control/server.js';
import type { ControlReply, StoreStatus } from '../control/protocol.js';
import { noSignInFor, OAuthError } from '../oauth/index.js';
import type { CompletedAuthorization } from '../tokens/pending-authorizations.js';
import { subjectFor } from '../tokens/subject.js';
import type { TokenManager } from '../tokens/token-manager.js';
import { tokenStatus } from '../tokens/token-status.js';
import { Passphrase } from '../tokens/vault/passphrase.js';

/** Answers the CLI's `status` and `authorize` requests from the running daemon's state. */
export function controlHandler(
  config: () => ProxyConfig,
  tokens: TokenManager,
  store?: () => StoreStatus,
): ControlHandler {
  return async (request) => {
    if (request.op === 'status') {
      const subjects = config()
        .accounts.filter((account) => !isCatchAll(account))
        .map((account) => ({ key: account.name, account, loginName: account.name }));
      const accounts = await tokenStatus(tokens, subjects);
      return { done: true, ok: true, accounts, ...(store && { store: store() }) };
    }

    const subject = subjectFor(config(), request.account);
    if (!subject) {
      return {
        done: true,
        ok: false,
        kind: 'unknown-account',
        message: `${config().file} has no account section for ${request.account}`,
      };
    }
    try {
      switch (request.op) {
        case 'authorize': {
          const noSignIn = noSignInFor(subject.account, subject.key);
          if (noSignIn)
            return {
              done: true,
              ok: false,
              kind: noSignIn.kind,
              message: noSignIn.message,
              hint: noSignIn.hint,
            };
          const pending = await tokens.authorize(subject);
          return {
            done: true,
            ok: true,
            account: subject.key,
            flow: pending.flow,
            url: pending.url,
            waiting: pending.waiting,
            ...(pending.userCode && { userCode: pending.userCode }),
          };
        }
        case 'complete': {
          const completed = await tokens.pending.complete(subject.key, request.redirect);
          return {
            done: true,
            ok: true,
            account: subject.key,
            authorised: true,
            loginWaiting: completed.password !== undefined,
          };
        }
        case 'wait':
          return await waitForOutcome(tokens, subject.key);
        case 'store': {
          const stored = await tokens.storeAuthorized(subject, new Passphrase(request.password));
          if (!stored)
            return {
              done: true,
              ok: false,
              kind: 'protocol',
              message: `No authorised tokens of ${subject.key} are waiting to be stored (a login may have stored them already)`,
            };
          return {
            done: true,
            ok: true,
            account: subject.key,
            authorised: true,
            loginWaiting: false,
          };
        }
      }
    } catch (err) {
      if (err instanceof OAuthError)
        return { done: true, ok: false, kind: err.kind, message: err.message, hint: err.hint };
      return { done: true, ok: false, kind: 'protocol', message: (err as Error).message };
    }
  };
}

/** Resolves when the account's pending authorisation (a device flow the daemon polls) ends. */
function waitForOutcome(tokens: TokenManager, key: string): Promise<ControlReply> {
  if (!tokens.pending.get(key))
    return Promise.resolve({
      done: true,
      ok: false,
      kind: 'protocol',
      message: `No authorisation is pending for ${key}`,
    });
  return new Promise((resolve) => {
    const onCompleted = (completed: CompletedAuthorization): void => {
      if (completed.subject.key !== key) return;
      cleanup();
      resolve({
        done: true,
        ok: true,
        account: key,
        authorised: true,
        loginWaiting: completed.password !== undefined,
      });
    };
    const onFailed = (failed: { key: string; error: OAuthError }): void => {
      if (failed.key !== key) return;
      cleanup();
      resolve({
        done: true,
        ok: false,
        kind: failed.error.kind,
        message: failed.error.message,
        hint: failed.error.hint,
      });
    };
    const cleanup = (): void => {
      tokens.pending.off('completed', onCompleted);
      tokens.pending.off('failed', onFailed);
    };
    tokens.pending.on('completed', onCompleted);
    tokens.pending.on('failed', onFailed);
  });
}

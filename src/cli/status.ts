import { controlRequest, DaemonNotRunningError } from '../control/client.js';
import type { AccountStatus, StoreStatus } from '../control/protocol.js';
import { UntrustedControlSocketError } from '../control/socket-trust.js';

/** `oauth2-mail-proxy status [--json]`: per account token state, from the running daemon. */
export async function status(options: { controlSocket: string; json: boolean }): Promise<number> {
  let reply;
  try {
    reply = await controlRequest(options.controlSocket, { op: 'status' });
  } catch (err) {
    if (!(err instanceof DaemonNotRunningError || err instanceof UntrustedControlSocketError))
      throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  if (!reply.ok || !('accounts' in reply)) {
    process.stderr.write(`${reply.ok ? 'unexpected answer' : reply.message}\n`);
    return 1;
  }
  const { store } = reply;
  process.stdout.write(
    options.json
      ? `${JSON.stringify({ accounts: reply.accounts, store }, null, 2)}\n`
      : (store?.up === false ? storeDown(store) : '') + table(reply.accounts),
  );
  return 0;
}

function storeDown(store: StoreStatus): string {
  return (
    `Token store ${store.location} does not answer (${store.problem ?? 'down'}); reconnecting.\n` +
    'Logins whose access token is still valid go on; those that need a refresh or a sign-in get a temporary failure.\n\n'
  );
}

function table(accounts: readonly AccountStatus[]): string {
  if (accounts.length === 0) return 'No accounts configured.\n';
  return accounts
    .map((account) => {
      const lines = [`${account.account}: ${describeState(account)}`];
      if (account.lastRefresh)
        lines.push(
          `  last refresh ${new Date(account.lastRefresh.at).toISOString()}: ${account.lastRefresh.outcome}`,
        );
      if (account.pending) {
        lines.push(
          `  waiting for sign-in since ${new Date(account.pending.since).toISOString()} (${account.pending.waiting} login(s) waiting)`,
        );
        lines.push(
          account.pending.userCode
            ? `  open ${account.pending.url} and enter ${account.pending.userCode}`
            : `  sign-in link: ${account.pending.url}`,
        );
        lines.push(`  finish with: oauth2-mail-proxy authorize ${account.account}`);
      }
      return lines.join('\n');
    })
    .join('\n')
    .concat('\n');
}

function describeState(account: AccountStatus): string {
  const expiry = account.accessTokenExpiry
    ? new Date(account.accessTokenExpiry * 1000).toISOString()
    : undefined;
  switch (account.state) {
    case 'active':
      return `active, access token valid until ${expiry}`;
    case 'expired':
      return account.hasRefreshToken
        ? `access token expired ${expiry}; refreshed at the next login`
        : 'expired, no refresh token: needs authorising';
    case 'pending':
      return 'authorisation pending';
    case 'authorised-unsaved':
      return 'authorised; stored at the next login';
    case 'needs-reauthorisation':
      return 'needs authorising again (the refresh token was refused)';
    case 'none':
      return 'no token yet: authorise it or log in once';
  }
}

import type { ControlHandler } from '../control/server.js';
import type { AccountStatus, ControlReply } from '../control/protocol.js';
import type { TokenManager } from '../tokens/token-manager.js';

/**
 * Everything the page asks of the daemon, in one place: it reads state and starts or completes
 * authorisations through the control socket's own handler (the same answers `status` and
 * `authorize` get), and hears about changes from the token manager's events.
 */
export interface DaemonPort {
  status(): Promise<readonly AccountStatus[]>;
  /** Starts (or joins) the account's authorisation. */
  authorize(account: string): Promise<ControlReply>;
  /** Redeems a pasted redirect address. */
  complete(account: string, redirect: string): Promise<ControlReply>;
  /** Encrypts tokens authorised while no login waited with the mail client's password. */
  store(account: string, password: string): Promise<ControlReply>;
  /** Calls `listener` when an account's state may have changed; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

export function daemonPort(handle: ControlHandler, tokens: TokenManager): DaemonPort {
  return {
    async status() {
      const reply = await handle({ op: 'status' });
      return reply.ok && 'accounts' in reply ? reply.accounts : [];
    },
    authorize: (account) => handle({ op: 'authorize', account }),
    complete: (account, redirect) => handle({ op: 'complete', account, redirect }),
    store: (account, password) => handle({ op: 'store', account, password }),
    onChange(listener) {
      const changed = (): void => listener();
      tokens.on('event', changed);
      tokens.pending.on('pending', changed);
      tokens.pending.on('completed', changed);
      tokens.pending.on('failed', changed);
      return () => {
        tokens.off('event', changed);
        tokens.pending.off('pending', changed);
        tokens.pending.off('completed', changed);
        tokens.pending.off('failed', changed);
      };
    },
  };
}

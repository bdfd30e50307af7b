import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { TokenEvent, TokenManager } from '../tokens/token-manager.js';

/** A hook that takes longer than this is stopped; notifications must not pile up. */
const HOOK_TIMEOUT_MS = 30_000;

/**
 * Runs the user's notification command (`--notify-command`) on token events, so a headless user
 * hears that an account needs authorising (push to a phone, send a mail...). The command runs
 * through /bin/sh with the details in environment variables, never on the command line (where
 * other users could read them in `ps`). A failing hook is logged and otherwise ignored.
 *
 *   OAUTH2_MAIL_PROXY_EVENT      authorisation_needed | token_obtained | token_refreshed | refresh_failed
 *   OAUTH2_MAIL_PROXY_ACCOUNT    the account
 *   OAUTH2_MAIL_PROXY_URL        the sign-in link (authorisation_needed)
 *   OAUTH2_MAIL_PROXY_USER_CODE  the device code to enter (device flow)
 *   OAUTH2_MAIL_PROXY_REASON     what happened / what to do
 *   OAUTH2_MAIL_PROXY_WEB_URL    the authorisation page to open, when it is on (`--web-address`);
 *                                without its access key, which a notification must not carry
 */
export function startNotifier(
  tokens: TokenManager,
  command: string,
  log: Logger,
  webUrl?: string,
): () => void {
  const onEvent = (event: TokenEvent): void => run(command, event, log, webUrl);
  tokens.on('event', onEvent);
  return () => tokens.off('event', onEvent);
}

function run(command: string, event: TokenEvent, log: Logger, webUrl?: string): void {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(webUrl && { OAUTH2_MAIL_PROXY_WEB_URL: webUrl }),
    OAUTH2_MAIL_PROXY_EVENT: event.type,
    OAUTH2_MAIL_PROXY_ACCOUNT: event.account,
    ...('url' in event && { OAUTH2_MAIL_PROXY_URL: event.url }),
    ...('userCode' in event && event.userCode && { OAUTH2_MAIL_PROXY_USER_CODE: event.userCode }),
    ...('reason' in event && { OAUTH2_MAIL_PROXY_REASON: event.reason }),
  };
  const child = spawn('/bin/sh', ['-c', command], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: HOOK_TIMEOUT_MS,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 2_000) stderr += chunk.toString('utf8');
  });
  child.once('error', (err) =>
    log.warn(
      { event: 'notify_failed', account: event.account, err: err.message },
      'notification command could not run',
    ),
  );
  child.once('exit', (code, signal) => {
    if (code === 0) {
      log.debug(
        { event: 'notified', account: event.account, type: event.type },
        'notification command ran',
      );
      return;
    }
    log.warn(
      {
        event: 'notify_failed',
        account: event.account,
        type: event.type,
        code,
        signal,
        stderr: stderr.trim().slice(0, 500),
      },
      'notification command failed',
    );
  });
}

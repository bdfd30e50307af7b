import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { StoredTokenFields } from '../config/types.js';
import { controlRequest, DaemonNotRunningError } from '../control/client.js';
import { UntrustedControlSocketError } from '../control/socket-trust.js';
import type { ControlReply } from '../control/protocol.js';
import {
  completeAuthorization,
  noSignInFor,
  OAuthError,
  pollDeviceAuthorization,
  startAuthorization,
  startDeviceAuthorization,
  type ProviderClientOptions,
  type TokenSet,
} from '../oauth/index.js';
import { TokenStoreError } from '../tokens/stores/file-store.js';
import { openTokenStore } from '../tokens/stores/open-store.js';
import { isPostgresUrl } from '../tokens/stores/postgres-store.js';
import { TokenStoreSetupError } from '../tokens/stores/store-errors.js';
import type { TokenStore } from '../tokens/stores/token-store.js';
import { subjectFor, type TokenSubject } from '../tokens/subject.js';
import { Passphrase } from '../tokens/vault/passphrase.js';
import {
  encryptedClientSecret,
  readFields,
  secretPasswordRefused,
  Vault,
} from '../tokens/vault/vault.js';
import { TerminalInput } from './terminal-input.js';

export interface AuthorizeOptions {
  readonly account: string;
  readonly configFile: string;
  readonly cacheStore: string;
  readonly controlSocket: string;
}

type Say = (text: string) => void;

/**
 * `oauth2-mail-proxy authorize <account>`: with a running daemon, the daemon owns the pending
 * authorisation (a waiting login completes the moment the paste succeeds); without one, this
 * process runs the flow itself and writes the token store. Resolves with the exit code.
 */
export async function authorize(options: AuthorizeOptions): Promise<number> {
  const say: Say = (text) => process.stdout.write(`${text}\n`);
  const input = new TerminalInput(process.stdin, process.stdout);
  try {
    let started: ControlReply;
    try {
      started = await controlRequest(options.controlSocket, {
        op: 'authorize',
        account: options.account,
      });
    } catch (err) {
      if (err instanceof UntrustedControlSocketError) {
        // Neither the daemon's nor ours to replace: sending anything, or writing the store, could
        // hand the code and the password to whoever planted it.
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
      if (!(err instanceof DaemonNotRunningError)) throw err;
      return await authorizeWithoutDaemon(options, input, say);
    }
    if (!started.ok) return failed(started, say);
    if (!('flow' in started))
      return failed(
        { done: true, ok: false, kind: 'protocol', message: 'unexpected answer from the proxy' },
        say,
      );

    if (started.flow === 'device') {
      say(`Open ${started.url} in a browser and enter the code ${started.userCode ?? ''}`);
      say('Waiting for the sign-in to complete...');
      const outcome = await controlRequest(
        options.controlSocket,
        { op: 'wait', account: options.account },
        0,
      );
      if (!outcome.ok) return failed(outcome, say);
      return authorized(outcome, options, input, say);
    }

    const exitCode = await askForPaste(started.url, input, say, async (pasted) => {
      const reply = await controlRequest(options.controlSocket, {
        op: 'complete',
        account: options.account,
        redirect: pasted,
      });
      if (reply.ok) return authorized(reply, options, input, say);
      if (reply.kind !== 'paste') return failed(reply, say);
      return { again: `${reply.message}. ${reply.hint ?? ''}`.trimEnd() };
    });
    if (exitCode === undefined) {
      say(
        '\nNothing was pasted. The authorisation stays pending in the proxy; run this command again to finish it.',
      );
      return 1;
    }
    return exitCode;
  } finally {
    input.close();
  }
}

/**
 * The daemon holds the new tokens. A waiting login has already stored them with its password;
 * otherwise the first login would set the password that protects them, whoever makes it. In a
 * terminal the owner can close that gap by typing the mail client's password here.
 */
async function authorized(
  reply: ControlReply,
  options: AuthorizeOptions,
  input: TerminalInput,
  say: Say,
): Promise<number> {
  if (!('loginWaiting' in reply) || reply.loginWaiting) {
    say(`Authorised ${options.account}; the running proxy is using the new token.`);
    return 0;
  }
  const password = process.stdin.isTTY
    ? await input.secret(
        `Password your mail client uses for ${options.account} (it encrypts the new tokens; Enter leaves that to the next login): `,
      )
    : undefined;
  if (!password) {
    say(
      `Authorised ${options.account}; the running proxy will use the new token at the next login (whose password then encrypts it).` +
        ((await storeIsShared(options.controlSocket))
          ? ' Other instances sharing its token store get the new tokens only once that login has stored them; logins waiting on them are told to try again until then.'
          : ''),
    );
    return 0;
  }
  const stored = await controlRequest(options.controlSocket, {
    op: 'store',
    account: options.account,
    password,
  });
  if (!stored.ok) return failed(stored, say);
  say(
    `Authorised ${options.account}; the new tokens are stored, encrypted with that password, and the running proxy is using them.`,
  );
  return 0;
}

function failed(reply: ControlReply, say: Say): number {
  if (reply.ok) return 0;
  say(`Could not authorise: ${reply.message}${reply.hint ? `. ${reply.hint}` : ''}`);
  return reply.kind === 'unknown-account' || reply.kind === 'config' ? 2 : 1;
}

/** No daemon: do the flow here and store the tokens, encrypted with the mail client's password. */
async function authorizeWithoutDaemon(
  options: AuthorizeOptions,
  input: TerminalInput,
  say: Say,
): Promise<number> {
  let subject: TokenSubject | undefined;
  try {
    subject = subjectFor(await loadConfig(options.configFile), options.account);
  } catch (err) {
    if (err instanceof ConfigError) {
      say(err.message);
      return 2;
    }
    throw err;
  }
  if (!subject) {
    say(`Could not authorise: ${options.configFile} has no account section for ${options.account}`);
    return 2;
  }
  const noSignIn = noSignInFor(subject.account, subject.key);
  if (noSignIn) {
    say(`Could not authorise: ${noSignIn.message}. ${noSignIn.hint}`);
    return 2;
  }
  say('(No running proxy found; authorising here and writing the token store directly.)');

  let store: TokenStore;
  try {
    store = await openTokenStore(options.cacheStore);
  } catch (err) {
    if (!(err instanceof TokenStoreSetupError)) throw err;
    say(`Could not authorise: ${err.message}`);
    return 2;
  }
  try {
    return await authorizeInto(store, subject, input, say);
  } finally {
    await store.close();
  }
}

/** Whether the running daemon keeps its tokens where other instances share them (PostgreSQL). */
async function storeIsShared(controlSocket: string): Promise<boolean> {
  const status = await controlRequest(controlSocket, { op: 'status' }).catch(() => undefined);
  return status !== undefined && 'store' in status && status.store !== undefined
    ? isPostgresUrl(status.store.location)
    : false;
}

async function authorizeInto(
  store: TokenStore,
  subject: TokenSubject,
  input: TerminalInput,
  say: Say,
): Promise<number> {
  const vault = new Vault();
  const unlocked = await unlockStoredSecret(subject, store, vault, input, say);
  if (typeof unlocked === 'number') return unlocked;
  const oauth: ProviderClientOptions = unlocked ? { clientSecret: unlocked.secret } : {};

  let tokens: TokenSet | undefined;
  try {
    tokens =
      subject.account.flow === 'device'
        ? await deviceFlow(subject, say, oauth)
        : await pasteFlow(subject, input, say, oauth);
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    say(`Could not authorise: ${err.message}. ${err.hint}`);
    return err.kind === 'config' ? 2 : 1;
  }
  if (!tokens) return 1;

  const password =
    unlocked?.password ??
    (await input.secret(
      `Password your mail client uses for ${subject.loginName} (it encrypts the stored tokens): `,
    ));
  if (!password) {
    say('No password given; nothing was stored.');
    return 1;
  }
  const key = await vault.newKey(new Passphrase(password));
  // The new tokens get a new salt: the secret moves with them, or nothing could decrypt it any more.
  const fields = vault.seal(key, {
    tokens: {
      accessToken: tokens.accessToken,
      accessTokenExpiry: tokens.expiresAt,
      ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
    },
    clientSecret: unlocked?.secret,
  });
  try {
    await store.write(subject.key, fields);
  } catch (err) {
    if (!(err instanceof TokenStoreError)) throw err;
    say(
      `The sign-in worked, but the tokens could not be stored: ${err.message}. Nothing was saved; fix that and run this command again.`,
    );
    return 1;
  }
  say(`Authorised ${subject.key}; tokens stored in ${store.location}.`);
  return 0;
}

/**
 * An account whose client secret is stored encrypted (client_secret_encrypted) needs the mail
 * password before the flow, because the code exchange sends the secret. Resolves with the password
 * and the secret, undefined when the account has no encrypted secret, or an exit code.
 */
async function unlockStoredSecret(
  subject: TokenSubject,
  store: TokenStore,
  vault: Vault,
  input: TerminalInput,
  say: Say,
): Promise<{ password: string; secret: string } | undefined | number> {
  let fields: StoredTokenFields | undefined;
  try {
    fields = (await readFields(store, subject)).fields;
  } catch (err) {
    if (!(err instanceof TokenStoreError)) throw err;
    // Saving the tokens will fail and say why; until then the config section is all there is to go by.
    fields = subject.account.tokensInConfig;
  }
  if (encryptedClientSecret(subject.account, fields) === undefined) return undefined;
  const password = await input.secret(
    `Password your mail client uses for ${subject.loginName} (it decrypts the stored client secret and encrypts the new tokens): `,
  );
  if (!password) {
    say('No password given; nothing was done.');
    return 1;
  }
  const opened = await vault.openClientSecretOnly(fields, new Passphrase(password), subject);
  if (opened.outcome === 'wrong-password') {
    say(`Could not authorise: ${secretPasswordRefused(subject.loginName)}.`);
    return 1;
  }
  if (opened.outcome === 'undecryptable') {
    say(`Could not authorise: ${opened.problem}.`);
    return 2;
  }
  return opened.clientSecret === undefined ? undefined : { password, secret: opened.clientSecret };
}

async function pasteFlow(
  subject: TokenSubject,
  input: TerminalInput,
  say: Say,
  oauth: ProviderClientOptions,
): Promise<TokenSet | undefined> {
  const pending = await startAuthorization(subject.account, {
    ...oauth,
    loginHint: subject.loginName,
  });
  const tokens = await askForPaste(pending.url, input, say, async (pasted) => {
    try {
      return await completeAuthorization(subject.account, pending, pasted, oauth);
    } catch (err) {
      if (!(err instanceof OAuthError) || err.kind !== 'paste') throw err;
      return { again: `${err.message}. ${err.hint}` };
    }
  });
  if (tokens === undefined) say('\nNothing was pasted; nothing was stored.');
  return tokens;
}

/**
 * Shows the sign-in link and reads pasted addresses until `redeem` accepts one (its result is
 * returned) or the input ends (undefined). `{ again }` explains a bad paste and asks once more.
 */
async function askForPaste<T>(
  url: string,
  input: TerminalInput,
  say: Say,
  redeem: (pasted: string) => Promise<T | { again: string }>,
): Promise<T | undefined> {
  say('Open this URL in a browser and sign in:');
  say(url);
  for (
    let prompt = 'Paste the full URL the browser ends on:\n> ';
    ;
    prompt = 'Paste the URL again:\n> '
  ) {
    const pasted = await input.line(prompt);
    if (pasted === undefined) return undefined;
    if (pasted.trim() === '') continue;
    const outcome = await redeem(pasted);
    if (typeof outcome === 'object' && outcome !== null && 'again' in outcome) {
      say(`That URL did not work: ${outcome.again}`);
      continue;
    }
    return outcome;
  }
}

async function deviceFlow(
  subject: TokenSubject,
  say: Say,
  oauth: ProviderClientOptions,
): Promise<TokenSet> {
  const device = await startDeviceAuthorization(subject.account, oauth);
  say(
    `Open ${device.verificationUriComplete ?? device.verificationUri} in a browser and enter the code ${device.userCode}`,
  );
  say('Waiting for the sign-in to complete...');
  return pollDeviceAuthorization(device.handle);
}

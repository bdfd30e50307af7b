/**
 * The token half of `check`: open the stored tokens with the mail client's password, then do a
 * real refresh, saving the rotated refresh token under the same key exactly as the daemon would
 * (Microsoft replaces it on every use; losing it costs the account). Failures are explained;
 * the stored tokens are never dropped here. For `oauth2_flow = password` with no tokens, or tokens
 * the given password does not decrypt, it does what a login would: a password grant, saved under
 * that password once the provider accepts it. A client secret stored encrypted
 * (`client_secret_encrypted`) is decrypted with the same password, sent, and re-encrypted with
 * whatever is saved, as the daemon does. `client_credentials` and `service_account` accounts need
 * no stored tokens: a new token is asked for, as a login would.
 */
import type { StoredTokenFields } from '../config/types.js';
import {
  classifyOAuthFailure,
  clientCredentials,
  passwordGrant,
  readServiceAccountKey,
  refresh,
  serviceAccountToken,
  type ProviderClientOptions,
  type ServiceAccountKey,
  type TokenSet,
} from '../oauth/index.js';
import type { TokenStore } from '../tokens/stores/token-store.js';
import { Passphrase } from '../tokens/vault/passphrase.js';
import {
  encryptedClientSecret,
  hasTokens,
  readFields,
  secretPasswordRefused,
  type PlainTokens,
  type Vault,
} from '../tokens/vault/vault.js';
import { explainTokenFailure, type AccountContext } from './explain.js';
import type { CheckResult } from './report.js';

export interface AccessTokenStepOptions {
  readonly store: TokenStore;
  readonly vault: Vault;
  readonly oauth: ProviderClientOptions & { readonly requestTimeoutMs: number };
  /** Asks for the mail client's password; undefined when none was given. */
  readonly askPassword: () => Promise<string | undefined>;
  /** Prints one check as soon as it is known. */
  readonly report: (result: CheckResult) => void;
  readonly explain: AccountContext;
}

/** The token the upstream checks should use, and how it was obtained. */
export interface AccessTokenOutcome {
  readonly accessToken?: string;
}

/**
 * Reports the stored-tokens and refresh checks. Resolves with the freshly refreshed access
 * token; when the refresh fails but the stored access token has not expired, with that one, so the
 * upstream checks still run.
 */
export async function checkAccessToken(
  options: AccessTokenStepOptions,
): Promise<AccessTokenOutcome> {
  const { subject } = options.explain;
  const { report } = options;
  if (subject.account.flow === 'client_credentials') return appOnlyToken(options);
  if (subject.account.flow === 'service_account') return delegatedToken(options);
  const passwordFlow = subject.account.flow === 'password';

  let fields: StoredTokenFields | undefined;
  let source: string;
  try {
    const read = await readFields(options.store, subject);
    fields = read.fields;
    source = read.fromStore
      ? options.store.location
      : `${options.explain.config.file} (tokens left in the config file)`;
  } catch (err) {
    report({ status: 'fail', title: `stored tokens: ${(err as Error).message}` });
    return {};
  }
  if (!hasTokens(fields)) {
    if (passwordFlow)
      return tokensFromPassword(options, fields, await options.askPassword(), 'none were stored');
    report({
      status: 'fail',
      title: `stored tokens: none for ${subject.key}; the account needs authorising`,
      details: [
        `Authorise it, signing in as ${subject.loginName}: ${options.explain.authorizeCommand}`,
      ],
    });
    return {};
  }

  const password = await options.askPassword();
  if (!password) {
    report({
      status: 'fail',
      title: 'stored tokens: no password given, so they cannot be decrypted',
    });
    return {};
  }
  const opened = await options.vault.open(fields, new Passphrase(password), subject);
  if (opened.outcome === 'wrong-password' && opened.refusedBy === 'tokens' && passwordFlow) {
    report({
      status: 'warn',
      title: `stored tokens: the password does not decrypt the tokens stored for ${subject.key}`,
      details: [
        "With oauth2_flow = password the identity provider decides whether it is the account's (new) password.",
      ],
    });
    return tokensFromPassword(
      options,
      fields,
      password,
      'the password did not decrypt the stored tokens',
    );
  }
  if (opened.outcome === 'wrong-password' && opened.refusedBy === 'tokens') {
    report({
      status: 'fail',
      title: `stored tokens: wrong password, it does not decrypt the tokens stored for ${subject.key}`,
      details: [
        'Give the password the mail client logs in to the proxy with: the tokens were encrypted with it.',
        `If that password has changed, authorise again to store the tokens under the new one: ${options.explain.authorizeCommand}`,
      ],
    });
    return {};
  }
  if (opened.outcome === 'wrong-password') {
    reportWrongSecretPassword(options);
    return {};
  }
  if (opened.unreadable !== undefined || !opened.key) {
    report({
      status: 'fail',
      title: `stored tokens: unreadable (${opened.unreadable ?? 'no token could be opened'})`,
      details: [
        `They cannot be used with any password. Authorise again, signing in as ${subject.loginName}: ${options.explain.authorizeCommand}`,
      ],
    });
    return {};
  }
  const { key, tokens } = opened;
  const now = Date.now() / 1000;
  const storedAccess =
    tokens.accessToken && tokens.accessTokenExpiry !== undefined && tokens.accessTokenExpiry > now
      ? tokens.accessToken
      : undefined;
  report({
    status: 'pass',
    title: `stored tokens: decrypted from ${source} (${describeStored(tokens, now)})`,
  });
  if (opened.secretProblem !== undefined) {
    report({ status: 'fail', title: `client secret: ${opened.secretProblem}` });
    return storedAccess ? { accessToken: storedAccess } : {};
  }
  const secret = opened.clientSecret;

  if (!tokens.refreshToken) {
    report({
      status: 'fail',
      title:
        'token refresh: there is no refresh token, so the account stops working when the access token expires',
      details: [
        'Make sure oauth2_scope includes offline_access (Microsoft) and the client may use refresh tokens, then',
        `authorise again, signing in as ${subject.loginName}: ${options.explain.authorizeCommand}`,
      ],
    });
    return storedAccess ? { accessToken: storedAccess } : {};
  }

  let refreshed: TokenSet;
  try {
    refreshed = await refresh(
      subject.account,
      tokens.refreshToken,
      withSecret(options.oauth, secret),
    );
  } catch (err) {
    const failure = explainTokenFailure(
      'token refresh',
      classifyOAuthFailure(err, 'refresh'),
      options.explain,
      options.oauth.requestTimeoutMs,
    );
    if (!storedAccess) {
      report(failure);
      return {};
    }
    const fallback = `The checks below use the stored access token, still valid until ${isoTime(tokens.accessTokenExpiry)}.`;
    report({ ...failure, details: [...(failure.details ?? []), fallback] });
    return { accessToken: storedAccess };
  }

  // As the daemon does: a store from an old email-oauth2-proxy moves to the current iteration count.
  const fieldsToSave = options.vault.seal(key, {
    tokens: {
      accessToken: refreshed.accessToken,
      accessTokenExpiry: refreshed.expiresAt,
      ...(refreshed.refreshToken && { refreshToken: refreshed.refreshToken }),
    },
    clientSecret: secret,
  });
  try {
    await options.store.write(subject.key, fieldsToSave);
  } catch (err) {
    report({
      status: 'fail',
      title: `token refresh: refreshed, but the new tokens could not be saved (${(err as Error).message})`,
      details: refreshed.refreshTokenKept
        ? ['The stored refresh token still works; fix the token store so new tokens can be kept.']
        : [
            'The provider replaced the refresh token, and the new one is lost: the stored one may stop working.',
            `Fix the token store, then authorise again: ${options.explain.authorizeCommand}`,
          ],
    });
    return { accessToken: refreshed.accessToken };
  }
  report({
    status: 'pass',
    title:
      `token refresh: new access token valid until ${isoTime(refreshed.expiresAt)}; ` +
      (refreshed.refreshTokenKept
        ? 'the provider kept the refresh token'
        : 'the rotated refresh token was saved'),
  });
  return { accessToken: refreshed.accessToken };
}

/**
 * `password` without usable stored tokens: the grant a login would make, saved under the same
 * password. A refused password leaves whatever is stored as it was.
 */
async function tokensFromPassword(
  options: AccessTokenStepOptions,
  fields: StoredTokenFields | undefined,
  password: string | undefined,
  why: string,
): Promise<AccessTokenOutcome> {
  const { subject } = options.explain;
  if (!password) {
    options.report({
      status: 'fail',
      title:
        "password grant: no password given (with oauth2_flow = password it is the account's own password)",
    });
    return {};
  }
  const passphrase = new Passphrase(password);
  const secret = await clientSecretFor(options, fields, passphrase);
  if (secret === false) return {};
  let tokens: TokenSet;
  try {
    tokens = await passwordGrant(
      subject.account,
      subject.loginName,
      password,
      withSecret(options.oauth, secret),
    );
  } catch (err) {
    const failure = classifyOAuthFailure(err, 'password');
    options.report(
      failure.kind === 'credentials'
        ? {
            status: 'fail',
            title: `password grant: the identity provider refused the password for ${subject.loginName}: ${failure.description ?? failure.code}`,
            details: [failure.hint, 'Nothing stored was changed.'],
          }
        : explainTokenFailure(
            'password grant',
            failure,
            options.explain,
            options.oauth.requestTimeoutMs,
          ),
    );
    return {};
  }
  const sealed = options.vault.seal(await options.vault.newKey(passphrase), {
    tokens: {
      accessToken: tokens.accessToken,
      accessTokenExpiry: tokens.expiresAt,
      ...(tokens.refreshToken && { refreshToken: tokens.refreshToken }),
    },
    clientSecret: secret,
  });
  try {
    await options.store.write(subject.key, sealed);
  } catch (err) {
    options.report({
      status: 'fail',
      title: `password grant: signed in, but the tokens could not be saved (${(err as Error).message})`,
      details: [
        'The next login signs in again with its password; fix the token store so the tokens can be kept.',
      ],
    });
    return { accessToken: tokens.accessToken };
  }
  options.report({
    status: 'pass',
    title:
      `password grant (${why}): signed in as ${subject.loginName}, access token valid until ${isoTime(tokens.expiresAt)}; ` +
      (tokens.refreshToken
        ? 'tokens saved'
        : 'saved, but there is no refresh token (add offline_access to oauth2_scope)'),
  });
  return { accessToken: tokens.accessToken };
}

/** `client_credentials`: nothing is stored that matters; ask for an app-only token, as the daemon would. */
async function appOnlyToken(options: AccessTokenStepOptions): Promise<AccessTokenOutcome> {
  const { config, subject } = options.explain;
  let clientSecret = await storedSecretByPassword(options, 'app-only token', 'client secret');
  if (clientSecret === false) return {};
  if (
    clientSecret === undefined &&
    !subject.account.clientSecret &&
    config.options.useLoginPasswordAsClientCredentialsSecret
  ) {
    clientSecret = await options.askPassword();
    if (!clientSecret) {
      options.report({
        status: 'fail',
        title: 'app-only token: no password given (it is the client secret here)',
      });
      return {};
    }
  }
  try {
    const tokens = await clientCredentials(subject.account, {
      ...options.oauth,
      ...(clientSecret && { clientSecret }),
    });
    options.report({
      status: 'pass',
      title: `app-only token: obtained with the client credentials grant, valid until ${isoTime(tokens.expiresAt)}`,
    });
    return { accessToken: tokens.accessToken };
  } catch (err) {
    options.report(
      explainTokenFailure(
        'app-only token',
        classifyOAuthFailure(err, 'client_credentials'),
        options.explain,
        options.oauth.requestTimeoutMs,
      ),
    );
    return {};
  }
}

/**
 * `service_account`: ask for a token to the login's mailbox with the service account's key, as
 * the daemon would; nothing is stored. The password is only asked for when the key itself is
 * stored encrypted (`client_secret_encrypted`).
 */
async function delegatedToken(options: AccessTokenStepOptions): Promise<AccessTokenOutcome> {
  const { subject } = options.explain;
  const keyOrPath = await storedSecretByPassword(options, 'service account token', 'key');
  if (keyOrPath === false) return {};
  let key: ServiceAccountKey;
  try {
    key = await readServiceAccountKey(subject.account, keyOrPath ?? subject.account.clientSecret);
  } catch (err) {
    options.report(
      explainTokenFailure(
        'service account key',
        classifyOAuthFailure(err, 'service_account'),
        options.explain,
        options.oauth.requestTimeoutMs,
      ),
    );
    return {};
  }
  options.report({
    status: 'pass',
    title: `service account key: ${key.clientEmail}${key.clientId ? ` (client ID ${key.clientId})` : ''} from ${key.source}`,
  });
  // The key names the token endpoint; explanations of an unreachable one should name it too.
  const explain = {
    ...options.explain,
    subject: { ...subject, account: { ...subject.account, tokenUrl: key.tokenUri.href } },
  };
  try {
    const tokens = await serviceAccountToken(subject.account, subject.loginName, {
      ...options.oauth,
      ...(keyOrPath && { clientSecret: keyOrPath }),
    });
    options.report({
      status: 'pass',
      title: `service account token: obtained for ${subject.loginName} (domain-wide delegation), valid until ${isoTime(tokens.expiresAt)}`,
    });
    return { accessToken: tokens.accessToken };
  } catch (err) {
    options.report(
      explainTokenFailure(
        'service account token',
        classifyOAuthFailure(err, 'service_account'),
        explain,
        options.oauth.requestTimeoutMs,
      ),
    );
    return {};
  }
}

/**
 * Decrypts the account's `client_secret_encrypted`, if it has one, reporting why not when it
 * cannot be. False after a failure was reported; undefined when there is no encrypted secret.
 */
async function clientSecretFor(
  options: AccessTokenStepOptions,
  fields: StoredTokenFields | undefined,
  passphrase: Passphrase,
): Promise<string | undefined | false> {
  const opened = await options.vault.openClientSecretOnly(
    fields,
    passphrase,
    options.explain.subject,
  );
  if (opened.outcome === 'opened') return opened.clientSecret;
  if (opened.outcome === 'wrong-password') reportWrongSecretPassword(options);
  else options.report({ status: 'fail', title: `client secret: ${opened.problem}` });
  return false;
}

function reportWrongSecretPassword(options: AccessTokenStepOptions): void {
  options.report({
    status: 'fail',
    title: `client secret: ${secretPasswordRefused(options.explain.subject.loginName)}`,
    details: [
      'Give the password the mail client logs in to the proxy with: the client secret was encrypted with it.',
    ],
  });
}

/** The stored fields (token store, else config) when they make the account's client secret an encrypted one. */
async function encryptedSecretIn(
  options: AccessTokenStepOptions,
): Promise<{ fields: StoredTokenFields | undefined } | undefined> {
  const { account } = options.explain.subject;
  const fields = await readFields(options.store, options.explain.subject).then(
    (read) => read.fields,
    () => account.tokensInConfig,
  );
  return encryptedClientSecret(account, fields) === undefined ? undefined : { fields };
}

/**
 * The secret stored encrypted (`client_secret_encrypted`), decrypted with the password `check`
 * asks for: undefined when there is none, false when it could not be (reported as `step`'s failure).
 */
async function storedSecretByPassword(
  options: AccessTokenStepOptions,
  step: string,
  what: string,
): Promise<string | undefined | false> {
  const encrypted = await encryptedSecretIn(options);
  if (!encrypted) return undefined;
  const password = await options.askPassword();
  if (!password) {
    options.report({
      status: 'fail',
      title: `${step}: no password given, so the stored ${what} (client_secret_encrypted) cannot be decrypted`,
    });
    return false;
  }
  return clientSecretFor(options, encrypted.fields, new Passphrase(password));
}

function withSecret(
  oauth: ProviderClientOptions,
  secret: string | undefined,
): ProviderClientOptions {
  return secret === undefined ? oauth : { ...oauth, clientSecret: secret };
}

function describeStored(tokens: PlainTokens, now: number): string {
  const refreshPart = tokens.refreshToken ? 'refresh token present' : 'no refresh token';
  if (!tokens.accessToken) return `${refreshPart}; no access token`;
  if (tokens.accessTokenExpiry === undefined) return `${refreshPart}; access token without expiry`;
  const state = tokens.accessTokenExpiry > now ? 'valid until' : 'expired';
  return `${refreshPart}; access token ${state} ${isoTime(tokens.accessTokenExpiry)}`;
}

function isoTime(unixSeconds: number | undefined): string {
  return unixSeconds === undefined
    ? 'unknown'
    : new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * What a password that does not open an account's stored tokens leads to. Usually a refusal that
 * changes nothing. With `oauth2_flow = password` the provider decides: the user may have changed
 * the password. With email-oauth2-proxy's `delete_account_token_on_password_error` the tokens go,
 * so that a new authorisation can store them under the new password, except where deleting them
 * would lock the owner out or let any password in.
 */
import type { Logger } from 'pino';
import { LoginFailure } from '../auth/types.js';
import type { StoredTokenFields } from '../config/types.js';
import type { TokenSubject } from './subject.js';

export interface WrongPasswordRules {
  /** `delete_account_token_on_password_error`. */
  readonly deleteTokens: boolean;
  /** Whether a new token needs the provider to accept what the login sent (see unattended-grants.ts). */
  readonly providerJudges: boolean;
  readonly log: Logger;
}

/** Ask the provider (password grant), delete the tokens, or refuse the login with this failure. */
export type WrongPasswordVerdict = 'ask-provider' | 'delete-tokens' | LoginFailure;

export function judgeWrongPassword(
  subject: TokenSubject,
  fields: StoredTokenFields,
  { deleteTokens, providerJudges, log }: WrongPasswordRules,
): WrongPasswordVerdict {
  const account = subject.key;
  if (subject.account.flow === 'password') {
    // Only the provider knows whether this is a typo or the account's new password. Either way
    // the stored tokens stay until it accepts the password; then new ones replace them.
    log.info(
      { event: 'wrong_password', account },
      'password does not unlock the stored tokens; asking the identity provider',
    );
    return 'ask-provider';
  }
  const secretStoredHere =
    !subject.account.clientSecret && fields.client_secret_encrypted !== undefined;
  if (deleteTokens && secretStoredHere) {
    // Deleting the section would delete the only copy of the client secret, and without it no
    // new authorisation could succeed: only the old password can still decrypt it.
    log.warn(
      { event: 'wrong_password', account },
      'wrong password: tokens kept despite delete_account_token_on_password_error, because client_secret_encrypted is stored with them',
    );
    return new LoginFailure(
      'bad-password',
      `Wrong password for ${subject.loginName}: it does not decrypt the account's stored OAuth2 tokens. They were not deleted, because the client secret is stored encrypted with them (client_secret_encrypted); to change the password, put the secret in client_secret`,
    );
  }
  if (deleteTokens && !providerJudges) {
    // Where nobody signs in (app-only, service account), the password that encrypts the stored
    // token is all that stands between a local user and the mailbox: deleting the token would let
    // any password in (email-oauth2-proxy refuses here too).
    log.warn(
      { event: 'wrong_password', account },
      'wrong password: token kept despite delete_account_token_on_password_error, because nobody signs in for this account',
    );
    return new LoginFailure(
      'bad-password',
      `Wrong password for ${subject.loginName}: it does not decrypt the account's stored token, and with oauth2_flow = ${subject.account.flow} a wrong password never replaces it; to change the password, remove [${subject.key}] from the token store`,
    );
  }
  if (deleteTokens) {
    log.warn(
      { event: 'tokens_deleted', account },
      'wrong password: tokens deleted (delete_account_token_on_password_error)',
    );
    return 'delete-tokens';
  }
  log.info({ event: 'wrong_password', account }, 'password does not unlock the stored tokens');
  return new LoginFailure(
    'bad-password',
    `Wrong password for ${subject.loginName}: it does not decrypt the account's stored OAuth2 tokens`,
  );
}

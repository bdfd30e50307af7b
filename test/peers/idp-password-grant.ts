/**
 * The resource owner password credentials grant (`grant_type=password`) for the test identity
 * provider, answering as Azure AD's ROPC endpoint does: a user table with passwords, tokens of the
 * same kind the code flow issues (so introspection, and with it Dovecot and smtp-server, accept
 * them) plus a rotating refresh token, and Azure's refusals: AADSTS50126 for a wrong password,
 * AADSTS50034 for an unknown user, AADSTS50076 for a user who must do multi-factor authentication.
 */
import type { KoaContext, default as Provider, errors as ProviderErrors } from 'oidc-provider';

import { SUPPORTED_SCOPES } from './idp-config.js';

export const PASSWORD_GRANT = 'password';

/**
 * The password the default test user signs in with. A test-only value; tests must still keep it
 * out of anything they print, like any password.
 */
export const TEST_USER_PASSWORD = 'test-only Passw0rd for the default user';

// Microsoft's wording, after the AADSTS prefix that azureResponseShapes turns into the body's number.
const WRONG_PASSWORD =
  'AADSTS50126: Error validating credentials due to invalid username or password.';
const UNKNOWN_USER =
  'AADSTS50034: The user account {EUII Hidden} does not exist in the example.com directory. To sign into this application, the account must be added to the directory.';
const NEEDS_MFA =
  'AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, ' +
  "you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.";

/** Who may sign in with a password, and who must use multi-factor authentication instead. */
export class TestUsers {
  readonly #passwords = new Map<string, string>();
  readonly #mfa = new Set<string>();

  constructor(defaultUser: string) {
    this.setPassword(defaultUser, TEST_USER_PASSWORD);
  }

  /** Adds a user, or changes a user's password (the old one stops working at once). */
  setPassword(user: string, password: string): void {
    this.#passwords.set(user.toLowerCase(), password);
  }

  /** From now on the user's password alone is not enough (Conditional Access demanding MFA). */
  requireMfa(user: string, required = true): void {
    if (required) this.#mfa.add(user.toLowerCase());
    else this.#mfa.delete(user.toLowerCase());
  }

  /** Azure AD's refusal for this sign-in (`AADSTSnnn: text`), or undefined when it succeeds. */
  refusal(user: string, password: string): string | undefined {
    const expected = this.#passwords.get(user.toLowerCase());
    if (expected === undefined) return UNKNOWN_USER;
    if (expected !== password) return WRONG_PASSWORD;
    if (this.#mfa.has(user.toLowerCase())) return NEEDS_MFA;
    return undefined;
  }
}

/**
 * Registers the password grant on `provider`. Clients still need `password` in their
 * `grant_types` to use it. Token requests for it are counted like the others
 * (faultableTokenEndpoint sees every grant type).
 */
export function registerPasswordGrant(
  provider: Provider,
  errors: typeof ProviderErrors,
  users: TestUsers,
): void {
  const supported = new Set(SUPPORTED_SCOPES);
  provider.registerGrantType(
    PASSWORD_GRANT,
    async (ctx: KoaContext) => {
      const params = ctx.oidc?.params ?? {};
      const client = ctx.oidc?.client;
      const username = typeof params.username === 'string' ? params.username : '';
      const password = typeof params.password === 'string' ? params.password : '';
      if (client === undefined) throw new Error('password grant without an authenticated client');
      if (username === '' || password === '') {
        throw new errors.InvalidRequest(
          "The request body must contain the following parameter: 'username' and 'password'.",
        );
      }
      const refusal = users.refusal(username, password);
      if (refusal !== undefined) throw new errors.InvalidGrant(refusal);

      const scopes = (typeof params.scope === 'string' ? params.scope : '')
        .split(' ')
        .filter((scope) => supported.has(scope));
      const scope = scopes.join(' ');
      const grant = new provider.Grant({ accountId: username, clientId: client.clientId });
      grant.addOIDCScope(scope);
      const grantId = await grant.save();
      const issued = {
        accountId: username,
        client,
        grantId,
        gty: PASSWORD_GRANT,
        scope,
        expiresWithSession: false,
      };
      const accessToken = new provider.AccessToken(issued);
      const body: Record<string, unknown> = {
        access_token: await accessToken.save(),
        token_type: accessToken.tokenType ?? 'Bearer',
        expires_in: accessToken.expiration,
        scope,
      };
      if (scopes.includes('offline_access') && client.grantTypeAllowed('refresh_token')) {
        body.refresh_token = await new provider.RefreshToken({ ...issued, rotations: 0 }).save();
      }
      ctx.body = body;
    },
    ['username', 'password', 'scope'],
  );
}

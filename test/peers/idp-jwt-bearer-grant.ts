/**
 * Google's JWT bearer grant for service accounts with domain-wide delegation
 * (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) for the test identity provider,
 * answering as Google's token endpoint does: the request is `grant_type` and `assertion` and
 * nothing else; the assertion must be RS256-signed with the test service account's key and name
 * it as issuer, this token endpoint as audience, a short lifetime, and the user to act as in
 * `sub`. The token it issues opens that user's mailbox (its introspection `sub` is the user), for
 * users an administrator has granted delegation to; others get Google's `unauthorized_client`.
 * Answers keep Google's shape (no AADSTS numbers).
 */
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage } from 'node:http';

import type { KoaContext, Middleware, default as Provider } from 'oidc-provider';

import { JWT_BEARER_GRANT } from './idp-config.js';
import { KEEP_RESPONSE_SHAPE } from './idp-microsoft-shapes.js';

export { JWT_BEARER_GRANT } from './idp-config.js';

/** The test service account's `client_email` (its client id at this provider too). */
export const SERVICE_ACCOUNT_EMAIL = 'mail-proxy@oauth2-mail-proxy-test.iam.gserviceaccount.com';

/** The scope Gmail's servers take, the one domain-wide delegation is granted for by default. */
const GMAIL_SCOPE = 'https://mail.google.com/';

// Google's wording (its token endpoint's `error_description`s).
const BAD_SIGNATURE = 'Invalid JWT Signature.';
const BAD_TIME =
  'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
const BAD_AUDIENCE = 'Invalid JWT: Failed audience check.';
const BAD_USER = 'Invalid email or User ID';
const NOT_DELEGATED =
  'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.';
/** Google allows a few minutes of clock skew. */
const CLOCK_SKEW_SECONDS = 300;

/** The test service account: its key as Google's console hands it out, and who it may act as. */
export interface TestServiceAccount {
  /** `client_email`, also its client id at this provider. */
  readonly clientEmail: string;
  /** The numeric unique ID an administrator grants domain-wide delegation to. */
  readonly clientId: string;
  readonly privateKeyId: string;
  /** The public half of the key, for tests that check signatures themselves. */
  readonly publicKey: KeyObject;
  /** The JSON key file's content, pretty-printed like the file Google's console downloads. */
  readonly keyJson: string;
  /** An administrator grants domain-wide delegation for `user` (by default only the default user has it). */
  grantDelegation(user: string): void;
  /** ... or takes it away. */
  revokeDelegation(user: string): void;
}

/** Creates the service account with a fresh RSA key; `tokenUrl` goes into its key as `token_uri`. */
export function createServiceAccount(
  tokenUrl: string,
  delegatedUsers: readonly string[],
): TestServiceAccount & { delegated(user: string): boolean } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = SERVICE_ACCOUNT_EMAIL;
  const clientId = `1${randomBytes(10).readBigUInt64BE().toString().padStart(20, '0')}`;
  const privateKeyId = randomBytes(20).toString('hex');
  const delegated = new Set(delegatedUsers.map((user) => user.toLowerCase()));
  const key = {
    type: 'service_account',
    project_id: 'oauth2-mail-proxy-test',
    private_key_id: privateKeyId,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    client_id: clientId,
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUrl,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: 'googleapis.com',
  };
  return {
    clientEmail,
    clientId,
    privateKeyId,
    publicKey: createPublicKey(privateKey),
    keyJson: `${JSON.stringify(key, null, 2)}\n`,
    grantDelegation: (user) => delegated.add(user.toLowerCase()),
    revokeDelegation: (user) => delegated.delete(user.toLowerCase()),
    delegated: (user) => delegated.has(user.toLowerCase()),
  };
}

interface Refusal {
  readonly status: number;
  readonly error: string;
  readonly description: string;
}

interface AssertionClaims {
  readonly sub?: string;
  readonly scope: string;
}

/**
 * Checks an assertion as Google does: signature, issuer, audience, lifetime. Returns the claims
 * the token depends on, or Google's refusal.
 */
function checkAssertion(
  assertion: string,
  account: TestServiceAccount,
  audience: string,
): AssertionClaims | Refusal {
  const refuse = (description: string): Refusal => ({
    status: 400,
    error: 'invalid_grant',
    description,
  });
  const parts = assertion.split('.');
  if (parts.length !== 3) return refuse(BAD_SIGNATURE);
  const [encodedHeader = '', encodedClaims = '', signature = ''] = parts;
  const header = decodeJson(encodedHeader);
  const claims = decodeJson(encodedClaims);
  if (header === undefined || claims === undefined || header.alg !== 'RS256')
    return refuse(BAD_SIGNATURE);
  if (header.kid !== undefined && header.kid !== account.privateKeyId) return refuse(BAD_SIGNATURE);
  const signed = verify(
    'sha256',
    Buffer.from(`${encodedHeader}.${encodedClaims}`),
    account.publicKey,
    Buffer.from(signature, 'base64url'),
  );
  if (!signed || claims.iss !== account.clientEmail) return refuse(BAD_SIGNATURE);
  if (claims.aud !== audience) return refuse(BAD_AUDIENCE);
  const now = Math.floor(Date.now() / 1000);
  const { iat, exp } = claims;
  if (
    typeof iat !== 'number' ||
    typeof exp !== 'number' ||
    iat > now + CLOCK_SKEW_SECONDS ||
    exp <= now ||
    exp - iat > 3600
  ) {
    return refuse(BAD_TIME);
  }
  if (typeof claims.scope !== 'string' || claims.scope.trim() === '') {
    return {
      status: 400,
      error: 'invalid_scope',
      description: 'Empty or missing scope not allowed.',
    };
  }
  if (
    claims.sub !== undefined &&
    (typeof claims.sub !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(claims.sub))
  )
    return refuse(BAD_USER);
  return { scope: claims.scope, ...(claims.sub !== undefined && { sub: claims.sub }) };
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function isRefusal(outcome: AssertionClaims | Refusal): outcome is Refusal {
  return 'error' in outcome;
}

/**
 * Registers the JWT bearer grant on `provider` for `account`, whose assertions must name
 * `tokenUrl` as their audience. Token requests for it are counted like the others, under the
 * grant's URN (faultableTokenEndpoint sees every grant type).
 */
export function registerJwtBearerGrant(
  provider: Provider,
  account: TestServiceAccount & { delegated(user: string): boolean },
  tokenUrl: string,
): void {
  provider.registerGrantType(
    JWT_BEARER_GRANT,
    async (ctx: KoaContext) => {
      ctx.state[KEEP_RESPONSE_SHAPE] = true;
      const client = ctx.oidc?.client;
      if (client === undefined) throw new Error('JWT bearer grant without a client');
      const assertion = ctx.oidc?.params?.assertion;
      if (typeof assertion !== 'string' || assertion === '') {
        answer(ctx, {
          status: 400,
          error: 'invalid_request',
          description: 'Missing required parameter: assertion',
        });
        return;
      }
      const outcome = checkAssertion(assertion, account, tokenUrl);
      if (isRefusal(outcome)) {
        answer(ctx, outcome);
        return;
      }
      // Without `sub` the token is the service account's own, which opens no mailbox.
      const user = outcome.sub ?? account.clientEmail;
      const scopes = outcome.scope.split(' ').filter(Boolean);
      if (
        outcome.sub !== undefined &&
        (!account.delegated(user) || scopes.some((scope) => scope !== GMAIL_SCOPE))
      ) {
        answer(ctx, { status: 401, error: 'unauthorized_client', description: NOT_DELEGATED });
        return;
      }
      const scope = scopes.join(' ');
      const grant = new provider.Grant({ accountId: user, clientId: client.clientId });
      grant.addOIDCScope(scope);
      const grantId = await grant.save();
      const accessToken = new provider.AccessToken({
        accountId: user,
        client,
        grantId,
        gty: JWT_BEARER_GRANT,
        scope,
        expiresWithSession: false,
      });
      ctx.body = {
        access_token: await accessToken.save(),
        expires_in: accessToken.expiration,
        token_type: 'Bearer',
      };
    },
    ['assertion'],
  );
}

function answer(ctx: KoaContext, refusal: Refusal): void {
  ctx.status = refusal.status;
  ctx.body = { error: refusal.error, error_description: refusal.description };
}

/**
 * Google identifies the service account by the assertion alone; oidc-provider wants every token
 * request to name a client. This middleware, on the token endpoint, gives an assertion-only JWT
 * bearer request the `client_id` its (not yet verified) issuer claims, and marks the answer to
 * keep Google's shape. Every other request passes through with its body untouched.
 */
export function identifyAssertionClient(tokenPath: string): Middleware {
  return async (ctx, next) => {
    if (
      ctx.path !== tokenPath ||
      ctx.method !== 'POST' ||
      !/^application\/x-www-form-urlencoded/i.test(ctx.get('content-type'))
    ) {
      await next();
      return;
    }
    const raw = await readBody(ctx.req);
    const form = new URLSearchParams(raw.toString('utf8'));
    if (form.get('grant_type') !== JWT_BEARER_GRANT) {
      replayBody(ctx.req, raw);
      await next();
      return;
    }
    ctx.state[KEEP_RESPONSE_SHAPE] = true;
    const issuer = decodeJson(form.get('assertion')?.split('.')[1] ?? '')?.iss;
    if (!form.has('client_id') && ctx.get('authorization') === '' && typeof issuer === 'string')
      form.set('client_id', issuer);
    replayBody(ctx.req, Buffer.from(form.toString(), 'utf8'));
    await next();
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Makes a consumed request body readable once more for oidc-provider's body parser, which reads
 * `req.iterator()` while `req.readable` and checks the length against `content-length`.
 */
function replayBody(req: IncomingMessage, body: Buffer): void {
  req.headers['content-length'] = String(body.length);
  Object.defineProperty(req, 'readable', { value: true, configurable: true });
  Object.defineProperty(req, 'iterator', {
    configurable: true,
    value: async function* replay(): AsyncGenerator<Buffer> {
      yield body;
    },
  });
}

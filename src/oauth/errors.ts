/**
 * Identity-provider failures, in three parts under `errors/`: the error class
 * (`oauth-error.ts`), the advice data (`advice.ts` per OAuth `error` code, `aadsts.ts` per
 * Microsoft AADSTS number, each with its kind), and the classifiers (`classify.ts` for OAuth error
 * responses, `openid-client.ts` for what openid-client throws).
 */
export { AADSTS_ADVICE, aadstsNumber, type AadstsAdvice } from './errors/aadsts.js';
export { classifyOAuthErrorResponse, type OAuthErrorFields } from './errors/classify.js';
export {
  OAuthError,
  redactTokens,
  type ConfigKey,
  type OAuthConfigKey,
  type OAuthErrorDetails,
  type OAuthErrorKind,
  type OAuthRequestContext,
} from './errors/oauth-error.js';
export {
  classifyOAuthFailure,
  explainOAuthFailure,
  withOAuthErrors,
} from './errors/openid-client.js';

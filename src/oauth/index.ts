/**
 * Everything the proxy asks of an identity provider. This part knows openid-client and OAuth,
 * and nothing of files, sockets or the token store.
 */
export {
  completeAuthorization,
  startAuthorization,
  type PendingAuthorization,
  type StartAuthorizationOptions,
} from './authorization-code.js';
export {
  certificateCredentialsAuth,
  certificateThumbprintSha256,
  CLIENT_ASSERTION_LIFETIME_SECONDS,
  loadCertificateCredentials,
  type CertificateCredentials,
} from './certificate-credentials.js';
export { clientCredentials } from './client-credentials.js';
export {
  DEFAULT_DEVICE_POLL_INTERVAL_SECONDS,
  pollDeviceAuthorization,
  startDeviceAuthorization,
  type DeviceAuthorization,
  type DeviceAuthorizationHandle,
} from './device.js';
export {
  AADSTS_ADVICE,
  aadstsNumber,
  type AadstsAdvice,
  type ConfigKey,
  classifyOAuthErrorResponse,
  classifyOAuthFailure,
  explainOAuthFailure,
  OAuthError,
  redactTokens,
  type OAuthConfigKey,
  withOAuthErrors,
  type OAuthErrorDetails,
  type OAuthErrorFields,
  type OAuthErrorKind,
  type OAuthRequestContext,
} from './errors.js';
export { isSignInFlow, noSignInFor, type SignInFlow } from './flows.js';
export {
  isPasteProblem,
  parsePastedRedirect,
  type PastedCode,
  type PasteProblem,
  type PasteProblemKind,
} from './paste.js';
export {
  createProviderClient,
  DEFAULT_REQUEST_TIMEOUT_MS,
  deviceAuthorizationEndpoint,
  isAllowedEndpoint,
  tokenEndpointClient,
  type ProviderClientOptions,
} from './provider-client.js';
export { passwordGrant } from './password-grant.js';
export { refresh } from './refresh.js';
export { JWT_BEARER_GRANT, serviceAccountToken } from './service-account.js';
export {
  ASSERTION_LIFETIME_SECONDS,
  assertionClaims,
  serviceAccountAssertion,
  type AssertionClaims,
  type AssertionRequest,
} from './service-account-assertion.js';
export {
  GOOGLE_TOKEN_URI,
  parseServiceAccountKey,
  readServiceAccountKey,
  serviceAccountKeyType,
  type ServiceAccountKey,
  type ServiceAccountKeyType,
} from './service-account-key.js';
export { DEFAULT_EXPIRES_IN_SECONDS, toTokenSet, type TokenSet } from './token-set.js';

/**
 * The device authorization grant (`oauth2_flow = device`): the user enters a short code at the
 * provider's page on any device while we poll the token endpoint. Tenants can block it, which is
 * why the paste flow stays the default (docs/providers.md).
 */
import * as client from 'openid-client';
import type { AccountConfig } from '../config/types.js';
import { explainOAuthFailure, OAuthError, withOAuthErrors } from './errors.js';
import { createProviderClient, type ProviderClientOptions } from './provider-client.js';
import { toTokenSet, type TokenSet } from './token-set.js';

/** Polling interval when the provider does not name one (RFC 8628 section 3.2). */
export const DEFAULT_DEVICE_POLL_INTERVAL_SECONDS = 5;

/** Identifies a started device authorization; pass it to `pollDeviceAuthorization`. */
export interface DeviceAuthorizationHandle {
  readonly account: string;
  /** Unix seconds after which the user code is void. */
  readonly expiresAt: number;
}

/** What to show the user. */
export interface DeviceAuthorization {
  readonly verificationUri: string;
  /** The page with the code already filled in, when the provider offers one. */
  readonly verificationUriComplete?: string;
  readonly userCode: string;
  /** Seconds between polls; 5 when the provider did not say. */
  readonly interval: number;
  /** Unix seconds after which the user code is void. */
  readonly expiresAt: number;
  /** The provider's own instructions (Microsoft sends a sentence), if any. */
  readonly message?: string;
  readonly handle: DeviceAuthorizationHandle;
}

interface HandleState {
  readonly config: client.Configuration;
  readonly response: client.DeviceAuthorizationResponse;
}

// The device_code stays here, out of anything a caller might log.
const HANDLES = new WeakMap<DeviceAuthorizationHandle, HandleState>();

/**
 * Asks the provider for a user code. The device endpoint comes from `permission_url`, or from
 * `token_url` when `permission_url` is an authorize endpoint (see `deviceAuthorizationEndpoint`).
 */
export async function startDeviceAuthorization(
  account: AccountConfig,
  options: ProviderClientOptions = {},
): Promise<DeviceAuthorization> {
  const config = createProviderClient(account, options);
  if (config.serverMetadata().device_authorization_endpoint === undefined) {
    throw new OAuthError('No device authorization endpoint is configured', {
      kind: 'config',
      code: 'invalid_config',
      hint: "For oauth2_flow = device, set permission_url to the provider's device authorization endpoint (Microsoft: https://login.microsoftonline.com/common/oauth2/v2.0/devicecode).",
      configKey: 'permission_url',
    });
  }
  const requestedAt = Date.now();
  const response = await withOAuthErrors('device', () =>
    client.initiateDeviceAuthorization(config, { scope: account.scope }),
  );
  const expiresAt = Math.floor(requestedAt / 1000) + Math.floor(response.expires_in);
  const handle: DeviceAuthorizationHandle = Object.freeze({ account: account.name, expiresAt });
  HANDLES.set(handle, { config, response });
  const message = typeof response['message'] === 'string' ? response['message'] : undefined;
  return {
    verificationUri: response.verification_uri,
    ...(response.verification_uri_complete !== undefined && {
      verificationUriComplete: response.verification_uri_complete,
    }),
    userCode: response.user_code,
    interval: response.interval ?? DEFAULT_DEVICE_POLL_INTERVAL_SECONDS,
    expiresAt,
    ...(message !== undefined && { message }),
    handle,
  };
}

/**
 * Polls until the user approves, honouring the provider's interval and `slow_down` (each adds
 * 5 s, as openid-client implements RFC 8628), and gives up when the code expires. A network
 * blip or provider outage while polling does not end the wait: polling resumes until expiry.
 *
 * @throws OAuthError `reauthorise` when the code expires or the user declines; `config` when the
 *   client may not use the device flow. When `signal` aborts, rejects with `signal.reason`.
 */
export async function pollDeviceAuthorization(
  handle: DeviceAuthorizationHandle,
  signal?: AbortSignal,
): Promise<TokenSet> {
  const state = HANDLES.get(handle);
  if (state === undefined) throw new TypeError('Unknown device authorization handle');

  for (;;) {
    signal?.throwIfAborted();
    const remainingMs = handle.expiresAt * 1000 - Date.now();
    if (remainingMs <= 0) throw expired();
    const expiry = AbortSignal.timeout(Math.ceil(remainingMs));
    const pollingSignal = signal ? AbortSignal.any([signal, expiry]) : expiry;
    const requestedAt = Date.now();
    try {
      const response = await untilAborted(
        client.pollDeviceAuthorizationGrant(state.config, state.response, undefined, {
          signal: pollingSignal,
        }),
        pollingSignal,
      );
      return toTokenSet(response, requestedAt);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (expiry.aborted) throw expired();
      const failure = await explainOAuthFailure(err, 'device');
      if (failure.kind !== 'transient') throw failure;
      // openid-client waits one interval before its first poll, so resuming does not hammer the provider.
    }
  }
}

/**
 * openid-client notices an abort only between its 5-second wait steps; settle as soon as the
 * signal fires instead, and let the abandoned poll end quietly.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function expired(): OAuthError {
  return new OAuthError('The device code expired before it was approved', {
    kind: 'reauthorise',
    code: 'expired_token',
    hint: 'Start the authorisation again and enter the new code before it expires.',
  });
}

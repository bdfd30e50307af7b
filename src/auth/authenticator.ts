import type { Logger } from 'pino';
import type { ProxyConfig } from '../config/types.js';
import { subjectFor } from '../tokens/subject.js';
import { LoginThrottle } from './login-throttle.js';
import type { TokenManager } from '../tokens/token-manager.js';
import { Passphrase } from '../tokens/vault/passphrase.js';
import {
  LoginFailure,
  type Authenticator,
  type LoginRequest,
  type UpstreamCredentials,
} from './types.js';

/**
 * The seam between the protocol sessions and OAuth: finds the account for a login name and asks
 * the token manager for an access token unlocked by the client's password.
 */
export class OAuthAuthenticator implements Authenticator {
  constructor(
    /** Read on every login, so a reloaded config applies to the next login. */
    private readonly config: () => ProxyConfig,
    private readonly tokens: TokenManager,
    private readonly log: Logger,
    private readonly throttle: LoginThrottle = new LoginThrottle(),
  ) {}

  async login(request: LoginRequest): Promise<UpstreamCredentials> {
    const config = this.config();
    const subject = subjectFor(config, request.username);
    if (!subject) {
      // The config file's path is for the owner's log, not for whoever connects.
      this.log.info(
        { event: 'unknown_account', user: request.username, conn: request.connectionId },
        `login for an unknown account: ${config.file} has no [${request.username}] section`,
      );
      await this.throttle.failed(request.username, request.remoteAddress);
      throw new LoginFailure(
        'unknown-account',
        `Unknown account ${request.username}: it is not configured in the proxy`,
      );
    }
    // From here on the password is a Passphrase: compared and passed on, read only by the vault.
    const password = new Passphrase(request.password);
    // The owner's password, once proven, never waits behind guesses.
    const end = this.throttle.isProven(subject.key, password)
      ? () => undefined
      : await this.throttle.admit(subject.key, password);
    request.admitted?.();
    let accessToken: string;
    try {
      accessToken = await this.tokens.accessToken(subject, password);
    } catch (err) {
      if (err instanceof LoginFailure && err.reason === 'bad-password')
        await this.throttle.failed(subject.key, request.remoteAddress);
      throw err;
    } finally {
      end();
    }
    this.throttle.succeeded(subject.key, request.remoteAddress, password);
    return { account: subject.key, user: request.username, accessToken };
  }

  rejectedUpstream(credentials: UpstreamCredentials): void {
    this.tokens.distrust(credentials.account);
  }
}

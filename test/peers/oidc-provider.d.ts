/**
 * The slice of oidc-provider 9 the test identity provider uses. oidc-provider ships no types and
 * `@types/oidc-provider` is not a dependency; the configuration stays loosely typed on purpose.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** The parts of a Koa context the test middlewares touch. */
  export interface KoaContext {
    readonly req: IncomingMessage;
    readonly res: ServerResponse;
    readonly method: string;
    readonly path: string;
    readonly query: Record<string, string | string[] | undefined>;
    status: number;
    body: unknown;
    type: string;
    /** False hands the raw response to the middleware (Koa sends nothing). */
    respond: boolean;
    readonly state: Record<string, unknown>;
    readonly oidc?: {
      readonly params?: Record<string, unknown>;
      readonly route?: string;
      readonly client?: ClientInstance;
    };
    get(header: string): string;
    set(header: string, value: string): void;
    remove(header: string): void;
    redirect(url: string): void;
    readonly response: { get(header: string): string };
  }

  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface Interaction {
    readonly uid: string;
    readonly prompt: {
      readonly name: string;
      readonly reasons: readonly string[];
      readonly details: {
        readonly missingOIDCScope?: readonly string[];
        readonly missingOIDCClaims?: readonly string[];
        readonly missingResourceScopes?: Readonly<Record<string, readonly string[]>>;
      };
    };
    readonly params: Readonly<Record<string, unknown>>;
    readonly session?: { readonly accountId: string };
    readonly grantId?: string;
  }

  export interface InteractionResults {
    login?: { accountId: string; remember?: boolean };
    consent?: { grantId: string };
    error?: string;
    error_description?: string;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: readonly string[]): void;
    addResourceScope(indicator: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantClass {
    new (init: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  /** A registered client as oidc-provider models it. */
  export interface ClientInstance {
    readonly clientId: string;
    readonly redirectUris: readonly string[];
    redirectUriAllowed(uri: string): boolean;
    grantTypeAllowed(type: string): boolean;
  }

  /** What the access and refresh token models take when a grant handler issues tokens. */
  export interface TokenInit {
    accountId: string;
    client: ClientInstance;
    grantId: string;
    gty: string;
    scope: string;
    expiresWithSession?: boolean;
    rotations?: number;
  }

  export interface IssuedToken {
    /** Seconds until it expires. */
    readonly expiration: number;
    readonly tokenType?: string;
    /** Stores the token and resolves with its value. */
    save(): Promise<string>;
  }

  export interface TokenClass {
    new (init: TokenInit): IssuedToken;
  }

  /** oidc-provider's error classes: thrown from a grant handler, they become the OAuth error response. */
  export const errors: {
    /** `detail` stays out of the response body; the `grant.error` event carries it as `error_detail`. */
    InvalidGrant: new (detail?: string) => Error;
    InvalidRequest: new (description?: string) => Error;
  };

  export type Configuration = Record<string, unknown>;

  export default class Provider {
    constructor(issuer: string, configuration: Configuration);
    readonly issuer: string;
    readonly Grant: GrantClass;
    readonly AccessToken: TokenClass;
    readonly RefreshToken: TokenClass;
    readonly Client: { readonly prototype: ClientInstance };
    use(middleware: Middleware): this;
    /** Adds a token endpoint grant; `parameters` are the form fields it reads besides grant_type. */
    registerGrantType(
      name: string,
      handler: (ctx: KoaContext) => Promise<void>,
      parameters?: readonly string[],
    ): void;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (ctx: KoaContext, error: Error) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<string>;
  }
}

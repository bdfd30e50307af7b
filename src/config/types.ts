/**
 * The validated, typed shape of a configuration file. Produced by `loadConfig`; everything
 * downstream reads these objects, never raw INI.
 */

export type Protocol = 'IMAP' | 'POP' | 'SMTP';

/** One `[IMAP-1993]` / `[POP-1995]` / `[SMTP-1587]` section: a local listener and its upstream. */
export interface ServerConfig {
  /** The section name as written, for messages. */
  readonly section: string;
  readonly protocol: Protocol;
  readonly localPort: number;
  /** Defaults to 127.0.0.1 (email-oauth2-proxy defaults to all interfaces; we do not). */
  readonly localAddress: string;
  readonly serverAddress: string;
  readonly serverPort: number;
  /** SMTP only: upstream is plain and upgraded with STARTTLS (`server_starttls`, legacy `starttls`). */
  readonly serverStarttls: boolean;
  /** Offer STARTTLS (SMTP/IMAP) or STLS (POP3) to local clients; needs the certificate and key. */
  readonly localStarttls: boolean;
  readonly localCertificatePath?: string;
  readonly localKeyPath?: string;
  /**
   * Our extension: a PEM file of extra CAs trusted for this upstream, on top of the system's
   * (for servers with a private CA). Verification itself is never switched off.
   */
  readonly serverCaFile?: string;
  /**
   * Our extension (`proxy_protocol_from`): the load balancers, as addresses and CIDR ranges, whose
   * connections start with a PROXY header naming the real client. Absent: no PROXY protocol.
   */
  readonly proxyProtocolFrom?: readonly string[] | undefined;
}

/** email-oauth2-proxy's `oauth2_flow` values. */
export type OAuthFlow =
  'authorization_code' | 'device' | 'client_credentials' | 'password' | 'service_account';

/** Token fields as email-oauth2-proxy writes them, values still encrypted / as strings. */
export interface StoredTokenFields {
  access_token?: string | undefined;
  access_token_expiry?: string | undefined;
  refresh_token?: string | undefined;
  token_salt?: string | undefined;
  token_iterations?: string | undefined;
  /**
   * The client secret, Fernet-encrypted with the same key as the tokens (email-oauth2-proxy's
   * `encrypt_client_secret_on_first_use`). It belongs with the `token_salt` it was encrypted
   * under, which is why it is kept, read and re-encrypted together with the tokens.
   */
  client_secret_encrypted?: string | undefined;
  last_activity?: string | undefined;
}

/**
 * The fields email-oauth2-proxy keeps per account next to the tokens, in its order (its
 * `--cache-store` file holds exactly these).
 */
export const STORED_TOKEN_FIELDS: readonly (keyof StoredTokenFields)[] = [
  'access_token',
  'access_token_expiry',
  'refresh_token',
  'token_salt',
  'token_iterations',
  'client_secret_encrypted',
  'last_activity',
];

/** An account section: any section name containing `@` (`[@example.com]` / `[@]` are catch-alls). */
export interface AccountConfig {
  /** The section name exactly as written; the key tokens are stored under. */
  readonly name: string;
  readonly permissionUrl: string;
  readonly tokenUrl: string;
  /** Space-separated scopes, passed to the provider as written. */
  readonly scope: string;
  readonly redirectUri: string;
  readonly redirectListenAddress?: string;
  readonly clientId: string;
  /** Empty or absent for public clients. */
  readonly clientSecret?: string;
  /**
   * `client_secret_encrypted` as written in the config section (also in {@link tokensInConfig}).
   * Used only when {@link clientSecret} is empty; the token store's section may hold a newer one.
   */
  readonly clientSecretEncrypted?: string;
  /**
   * `jwt_certificate_path` and `jwt_key_path`, resolved against the config file's folder: the
   * client authenticates with an assertion signed by the certificate's key (Microsoft's
   * "certificate credentials") instead of a secret. Used only when the account has no client
   * secret of any kind; a secret wins.
   */
  readonly certificateCredentials?: CertificateCredentialFiles;
  readonly flow: OAuthFlow;
  /** Defaults to true for public clients: no client secret and no certificate credentials. */
  readonly usePkce: boolean;
  /**
   * The stored fields found in the config file itself (email-oauth2-proxy keeps them there without
   * `--cache-store`), `client_secret_encrypted` and its `token_salt` included; read, never written back.
   */
  readonly tokensInConfig?: StoredTokenFields;
}

/** Where an account's certificate credentials are: both PEM files, absolute paths. */
export interface CertificateCredentialFiles {
  /** `jwt_certificate_path`: the X.509 certificate registered with the app. */
  readonly certificatePath: string;
  /** `jwt_key_path`: its private key, unencrypted. */
  readonly keyPath: string;
}

/** The `[emailproxy]` section. */
export interface GlobalOptions {
  /** email-oauth2-proxy defaults to true; we default to false so a typo never costs a token. */
  readonly deleteAccountTokenOnPasswordError: boolean;
  /** Read so start-up can say it is not applied: the config file is never rewritten. */
  readonly encryptClientSecretOnFirstUse: boolean;
  readonly allowCatchAllAccounts: boolean;
  readonly useLoginPasswordAsClientCredentialsSecret: boolean;
  /**
   * Our extension: accept logins on listeners reachable from other machines without TLS. Off by
   * default; when on, the daemon warns at start.
   */
  readonly allowPlaintextNetworkLogins: boolean;
  /** Our extension (`metrics_address`): serve `/metrics` and `/healthz` here; `--metrics-address` wins. */
  readonly metricsAddress?: { readonly host: string; readonly port: number } | undefined;
  /** Our extension (`cache_store`): the token store, a path or `postgresql://`; `--cache-store` wins. */
  readonly cacheStore?: string | undefined;
}

export interface ProxyConfig {
  /** Absolute path of the file this was read from. */
  readonly file: string;
  readonly servers: readonly ServerConfig[];
  /** In file order. Look accounts up with `findAccount`, which applies catch-all rules. */
  readonly accounts: readonly AccountConfig[];
  readonly options: GlobalOptions;
}

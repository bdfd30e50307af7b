/**
 * Dovecot configuration for a private test instance: XOAUTH2 checked by introspection at the test
 * identity provider, IMAP/IMAPS/POP3/POP3S on loopback ports, every path inside one temp dir,
 * and no failed-login penalty (tests fail logins on purpose and must not be slowed down).
 */

export interface DovecotPorts {
  readonly imap: number;
  readonly imaps: number;
  readonly pop3: number;
  readonly pop3s: number;
}

export interface DovecotSettings {
  /** The instance's directory; must be traversable by `nobody`. */
  readonly dir: string;
  readonly ports: DovecotPorts;
  readonly certFile: string;
  readonly keyFile: string;
  /** Space-separated SASL mechanisms to advertise, e.g. `xoauth2` (Office 365's choice). */
  readonly mechanisms: string;
  /** Introspection endpoint with the confidential client's credentials in it. */
  readonly introspectionUrl: string;
  readonly authDebug: boolean;
  /** Appended after everything else; later settings and repeated sections override earlier ones. */
  readonly extraConfig?: string;
}

/** Paths of an instance's files, all under its directory. */
export function dovecotPaths(dir: string): {
  config: string;
  oauth2: string;
  log: string;
  baseDir: string;
  stateDir: string;
  homes: string;
} {
  return {
    config: `${dir}/dovecot.conf`,
    oauth2: `${dir}/dovecot-oauth2.conf.ext`,
    log: `${dir}/dovecot.log`,
    baseDir: `${dir}/run`,
    stateDir: `${dir}/state`,
    homes: `${dir}/home`,
  };
}

/** The oauth2 passdb's settings file. */
export function oauth2PassdbConfig(settings: DovecotSettings): string {
  return `# The user name in the token (introspection "sub") must equal the login name.
introspection_mode = post
introspection_url = ${settings.introspectionUrl}
force_introspection = yes
username_attribute = sub
active_attribute = active
active_value = true
timeout_msecs = 10000
debug = ${settings.authDebug ? 'yes' : 'no'}
`;
}

/** The main `dovecot.conf`. */
export function dovecotConfig(settings: DovecotSettings): string {
  const paths = dovecotPaths(settings.dir);
  const { ports } = settings;
  return `protocols = imap pop3
listen = 127.0.0.1
instance_name = oauth2-mail-proxy-test-${ports.imaps}
base_dir = ${paths.baseDir}
state_dir = ${paths.stateDir}
log_path = ${paths.log}
auth_verbose = yes
auth_debug = ${settings.authDebug ? 'yes' : 'no'}

ssl = yes
ssl_cert = <${settings.certFile}
ssl_key = <${settings.keyFile}
# XOAUTH2 counts as a plaintext mechanism; the plain ports must accept it too.
disable_plaintext_auth = no

auth_mechanisms = ${settings.mechanisms}
auth_failure_delay = 0
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${paths.oauth2}
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${paths.homes}/%u allow_all_users=yes
}
first_valid_uid = 1
mail_location = maildir:~/Maildir

protocol imap {
  mail_max_userip_connections = 1000
}
protocol pop3 {
  mail_max_userip_connections = 1000
}

service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = ${ports.imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports.pop3}
  }
  inet_listener pop3s {
    port = ${ports.pop3s}
    ssl = yes
  }
}
# Renaming the penalty socket switches off anvil's growing delay after failed logins from one IP;
# login_trusted_networks does not in 2.3.19.
service anvil {
  unix_listener anvil-auth-penalty {
    path = anvil-auth-penalty-disabled
  }
}
${settings.extraConfig ?? ''}`;
}

/**
 * Dovecot's defaults hold about a hundred TLS connections (one login process each) and a thousand
 * sessions per user and address. The benchmark holds 2,000 sessions of one user from 127.0.0.1,
 * so the login processes serve many connections each ("high-performance" mode, as large
 * installations run it) and the limits are raised. Validated tokens are cached for an hour, as a
 * large provider would, so that the server's own cost of a login stays small next to the proxy's.
 * The benchmark's direct and proxied runs use the same instance; the fleet tests use it too.
 */
export const MANY_CONNECTIONS = `
auth_cache_size = 10M
auth_cache_ttl = 1 hour
default_client_limit = 10000
default_vsz_limit = 1G
protocol imap {
  mail_max_userip_connections = 10000
}
protocol pop3 {
  mail_max_userip_connections = 10000
}
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 6000
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
}
service imap {
  process_limit = 6000
}
service anvil {
  client_limit = 20000
}
service auth {
  client_limit = 20000
}
`;

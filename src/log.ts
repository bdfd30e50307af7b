import pino, { type Logger } from 'pino';
import { escapeLogLine, REDACTED, shownCode } from './log-safety.js';

export interface LogOptions {
  readonly debug: boolean;
  /** Write JSON lines to this file instead of stderr. */
  readonly file?: string;
  /** Human-readable lines (for a terminal); JSON lines otherwise (journald, files). */
  readonly pretty: boolean;
}

/**
 * Field names that may hold secrets. Our own code never logs them; this is the net under that
 * rule, for objects that reach a log call by accident (an error's request options, a config).
 * `code` is an OAuth error code in our failure lines, and is shown when it looks like one (see
 * `shownCode`); an authorization code under that name is still redacted.
 */
const REDACT = [
  'password',
  'pass',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'clientSecret',
  'client_secret',
  'codeVerifier',
  'authorizationCode',
  'code',
  '*.code',
  '*.password',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.clientSecret',
  '*.client_secret',
];

/** The daemon's logger: stderr by default so stdout stays free for the terminal prompt. */
export function createLogger(options: LogOptions): Logger {
  const level = options.debug ? 'debug' : 'info';
  const base = {
    level,
    // No pid and hostname on every line.
    base: null,
    redact: {
      paths: REDACT,
      censor: (value: unknown, path: string[]) =>
        path.at(-1) === 'code' ? shownCode(value) : REDACTED,
    },
    // One place every line passes, whatever its destination: the file, stderr, pino-pretty.
    hooks: { streamWrite: escapeLogLine },
  };
  if (options.file)
    return pino(
      base,
      // 0600: the log names users, accounts and sign-in links, not for other local users.
      pino.destination({ dest: options.file, mkdir: true, append: true, sync: false, mode: 0o600 }),
    );
  if (options.pretty) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: {
          destination: 2,
          colorize: true,
          translateTime: 'SYS:HH:MM:ss',
          ignore: 'pid,hostname',
        },
      },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import type { ProxyConfig } from '../config/types.js';
import { accountSummary, formatSummary } from '../doctor/account-summary.js';
import { checkAccessToken } from '../doctor/access-token.js';
import { configChecks, configuredProtocols } from '../doctor/config-checks.js';
import { explainProbe, type ExplainContext } from '../doctor/explain.js';
import { providerFamily } from '../doctor/provider-facts.js';
import {
  exitCodeFor,
  formatResult,
  marksFor,
  summarise,
  type CheckResult,
} from '../doctor/report.js';
import { claimsCheck, type ClaimProblem } from '../doctor/token-claims.js';
import { probeUpstream } from '../doctor/upstream-probe.js';
import { describeTarget } from '../proxy/upstream.js';
import { upstreamTarget } from '../proxy/protocols.js';
import { openStoreForCheck } from '../doctor/token-store-check.js';
import { subjectFor } from '../tokens/subject.js';
import { Vault } from '../tokens/vault/vault.js';
import { authorizeCommandFor } from './authorize-command.js';
import { TerminalInput } from './terminal-input.js';

export interface CheckOptions {
  readonly account: string;
  readonly configFile: string;
  readonly cacheStore: string;
  readonly controlSocket: string;
  /** Bound on each identity-provider request and each upstream connection / reply. */
  readonly timeoutMs: number;
}

/**
 * `oauth2-mail-proxy check <account>`, the doctor: shows what the configuration resolves to,
 * decrypts and refreshes the account's tokens (saving the rotated refresh token), reads the
 * access token's claims, and logs in to every configured upstream with XOAUTH2. Each check is
 * printed as it finishes; the report goes to stdout, prompts to stderr.
 *
 * @returns 0 when every check passed, 1 when one failed, 2 when the configuration cannot be
 *   loaded or has no section for the account
 */
export async function check(options: CheckOptions): Promise<number> {
  const out = (text: string): void => void process.stdout.write(text);
  let config: ProxyConfig;
  try {
    config = await loadConfig(options.configFile);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`oauth2-mail-proxy check: ${err.message}\n`);
    return 2;
  }
  const subject = subjectFor(config, options.account);
  if (!subject) {
    const sections = config.accounts.map((account) => `[${account.name}]`).join(', ') || 'none';
    process.stderr.write(
      `oauth2-mail-proxy check: ${config.file} has no account section for ${options.account} (account sections: ${sections})\n`,
    );
    return 2;
  }

  const opened = await openStoreForCheck(options.cacheStore);
  // Only to describe the client: an unreadable store is reported by the token check below.
  const stored = await opened.store?.read(subject.key).catch(() => undefined);
  const storedSecret = stored?.client_secret_encrypted !== undefined;
  out(
    `Checking ${subject.loginName}\n\n${formatSummary(accountSummary(config, subject, options.cacheStore, storedSecret))}\n`,
  );
  const marks = marksFor(process.stdout);
  const results: CheckResult[] = [];
  const report = (result: CheckResult): void => {
    results.push(result);
    out(formatResult(result, marks));
  };
  for (const result of configChecks(config, subject.account)) report(result);
  if (opened.result) report(opened.result);
  if (opened.store === undefined) {
    out(`\n${summarise(results)}`);
    return exitCodeFor(results);
  }
  const store = opened.store;

  const authorizeCommand = authorizeCommandFor(subject.key, options);
  // Opened only when a password is needed: a reader on stdin would otherwise hold a terminal for nothing.
  let input: TerminalInput | undefined;
  const askPassword = async (): Promise<string | undefined> => {
    input ??= new TerminalInput(process.stdin, process.stderr);
    // With the password flow the mail client's password is the account's own and also gets tokens.
    const purpose =
      subject.account.flow === 'password'
        ? 'the account password; it decrypts the stored tokens or gets new ones'
        : 'it decrypts the stored tokens';
    const password = await input.secret(
      `Password your mail client uses for ${subject.loginName} (${purpose}): `,
    );
    // A terminal echoes the Enter; from a pipe nothing ends the prompt's line.
    if (!process.stdin.isTTY) process.stderr.write('\n');
    return password;
  };
  let accessToken: string | undefined;
  try {
    ({ accessToken } = await checkAccessToken({
      store,
      vault: new Vault(),
      oauth: { requestTimeoutMs: options.timeoutMs },
      askPassword,
      report,
      explain: { config, subject, authorizeCommand },
    }));
  } finally {
    input?.close();
    // A PostgreSQL pool would keep the command running.
    await store.close();
  }

  let claimProblems: ClaimProblem[] = [];
  if (accessToken) {
    const claims = claimsCheck(
      accessToken,
      {
        loginName: subject.loginName,
        protocols: configuredProtocols(config),
        family: providerFamily(subject.account),
        now: Date.now() / 1000,
      },
      authorizeCommand,
    );
    claimProblems = claims.problems;
    report(claims.result);
  } else {
    report({ status: 'skip', title: 'access token claims: not checked (no access token)' });
  }

  const context: ExplainContext = { config, subject, authorizeCommand, claimProblems };
  for (const server of config.servers) {
    if (!accessToken) {
      report({
        status: 'skip',
        title: `${server.protocol} ${describeTarget(upstreamTarget(server))}: not checked (no access token)`,
      });
      continue;
    }
    const outcome = await probeUpstream(server, {
      credentials: { account: subject.key, user: subject.loginName, accessToken },
      timeoutMs: options.timeoutMs,
    });
    report(explainProbe(server, outcome, context, options.timeoutMs));
  }

  out(`\n${summarise(results)}`);
  return exitCodeFor(results);
}

import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import {
  startSessionUnderTest,
  testCa,
  type SessionUnderTest,
} from '../../support/session-harness.js';
import { CaseAuthenticator, expectedOutcome, secretsOf, type CaseAccounts } from './accounts.js';
import { cut, printable } from './bytes.js';
import { clientLines, logProblems, memoryProblems, upstreamProblems } from './case-checks.js';
import { ClientConnection } from './client-connection.js';
import type { ClientScript } from './client-script.js';
import { FuzzUpstream } from './fuzz-upstream.js';
import type { ProtocolRules } from './protocol-rules.js';

/**
 * Runs generated client conversations against a real listener of one protocol and checks what
 * every conversation must satisfy, whatever the client sent:
 *
 * - nothing fails unexpectedly (no `session_error`, nothing logged at error level);
 * - nothing hangs: a client that half-closes is closed within a bound, a silent one by the idle
 *   timeout, one that vanishes leaves no connection behind, here or upstream;
 * - memory stays bounded (no buffer grows with a number the client sent);
 * - every line sent to the client is valid for the protocol;
 * - the upstream sees nothing before the login but the protocol's XOAUTH2 exchange (and, for
 *   SMTP, the client's EHLO / HELO), and each XOAUTH2 carries credentials the authenticator
 *   handed out for a password the client got right;
 * - no password, token or SASL blob of the conversation appears in the log (debug level).
 */

/** How long a client waits for an answer the protocol owes it, on a busy two-core machine. */
export const ANSWER_BOUND_MS = 4_000;
/** How long a conversation may take to end once the client has done its part. */
export const CLOSE_BOUND_MS = 4_000;

/** A listener of one protocol with its fuzz upstream and authenticator. */
export class FuzzTarget {
  private constructor(
    readonly rules: ProtocolRules,
    readonly proxy: SessionUnderTest,
    readonly upstream: FuzzUpstream,
    readonly auth: CaseAuthenticator,
    readonly idleTimeoutMs: number,
    readonly caPem: string,
    private readonly disposeCa: () => Promise<void>,
  ) {}

  /**
   * Starts the listener. `localStartTls` configures a certificate, so STARTTLS / STLS is offered;
   * `idleTimeoutMs` is short, so silent clients do not slow the run down.
   */
  static async start(
    rules: ProtocolRules,
    options: { idleTimeoutMs: number; localStartTls: boolean },
  ): Promise<FuzzTarget> {
    const ca = await testCa();
    const upstream = await FuzzUpstream.start(ca, rules.protocol);
    const auth = new CaseAuthenticator();
    const [key, cert] = await Promise.all([readFile(ca.keyFile), readFile(ca.certFile)]);
    const proxy = await startSessionUnderTest({
      protocol: rules.protocol,
      session: rules.session,
      auth,
      upstream: upstream.scripted,
      upstreamSecurity: 'implicit',
      caPem: ca.caPem,
      limits: { idleTimeoutMs: options.idleTimeoutMs },
      ...(options.localStartTls
        ? { localTls: { context: tls.createSecureContext({ key, cert }), implicit: false } }
        : {}),
    });
    return new FuzzTarget(rules, proxy, upstream, auth, options.idleTimeoutMs, ca.caPem, () =>
      ca.dispose(),
    );
  }

  async stop(): Promise<void> {
    await this.proxy.close();
    await this.upstream.stop();
    await this.disposeCa();
  }

  /**
   * Runs one conversation and returns what is wrong with it (nothing, for a pass). Conversations
   * run one at a time, so the log lines and upstream connections since its start are this one's.
   */
  async run(accounts: CaseAccounts, script: ClientScript): Promise<string[]> {
    this.auth.use(accounts);
    // What earlier cases left is dropped, so that a campaign's memory stays flat.
    this.proxy.logs.lines.splice(0);
    this.upstream.records.splice(0);
    const problems: string[] = [];

    const client = await ClientConnection.open(this.proxy.port);
    const { vanished, startedTls } = await this.drive(client, script, problems);
    await this.finish(client, script, vanished, problems);

    const output = client.output;
    const checked = startedTls ? output : this.beforeUnansweredStartTls(output);
    const complete = !vanished && checked.length === output.length;
    for (const violation of this.rules.outputViolations(checked, { complete }))
      problems.push(`to the client: ${violation}`);

    const logs = [...this.proxy.logs.lines];
    problems.push(
      ...logProblems(logs, [...secretsOf(accounts), ...script.secrets], clientLines(script)),
    );
    problems.push(...upstreamProblems(this.rules, this.upstream.records, this.auth.calls, logs));
    if (script.expectedLogins && script.ending !== 'vanish') {
      const seen = this.auth.calls.map(({ username, password }) => ({ username, password }));
      // A token the server rejects is refreshed and tried once more within the same login.
      const expected = script.expectedLogins.flatMap((login) =>
        expectedOutcome(accounts, login.username, login.password) === 'token-rejected'
          ? [login, login]
          : [login],
      );
      if (JSON.stringify(seen) !== JSON.stringify(expected)) {
        problems.push(
          `the authenticator saw ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`,
        );
      }
    }
    problems.push(...memoryProblems());
    if (problems.length > 0) problems.push(`client received: ${printable(output, 2000)}`);
    return problems;
  }

  /** Sends the script; returns whether the client vanished, and whether it started TLS. */
  private async drive(
    client: ClientConnection,
    script: ClientScript,
    problems: string[],
  ): Promise<{ vanished: boolean; startedTls: boolean }> {
    const total = script.actions.reduce(
      (sum, a) => sum + (a.kind === 'send' ? a.bytes.length : a.kind === 'flood' ? a.bytes : 0),
      0,
    );
    let budget =
      script.ending === 'vanish' ? Math.floor(script.vanishAt * total) : Number.POSITIVE_INFINITY;
    let startedTls = false;

    if (
      script.waitForGreeting &&
      (await client.lineAfter(0, /^/, ANSWER_BOUND_MS)) === undefined &&
      !client.closed
    ) {
      problems.push(`no greeting within ${ANSWER_BOUND_MS} ms`);
    }
    for (const action of script.actions) {
      if (client.closed) break;
      if (action.kind === 'starttls') {
        startedTls = true;
        if (!(await client.startTls(this.caPem, ANSWER_BOUND_MS)) && !client.closed)
          problems.push('the local TLS handshake did not complete');
        continue;
      }
      const bytes =
        action.kind === 'send' ? action.bytes : Buffer.alloc(action.bytes, action.pattern);
      const offset = client.outputLength;
      for (const piece of action.kind === 'send'
        ? cut(bytes, script.writeSizes)
        : cut(bytes, [64 * 1024])) {
        const allowed = piece.subarray(0, Math.max(0, Math.min(piece.length, budget)));
        budget -= allowed.length;
        if (allowed.length > 0 && (await client.write(allowed, ANSWER_BOUND_MS)) === 'stalled') {
          problems.push(`the proxy stopped reading for ${ANSWER_BOUND_MS} ms without closing`);
          return { vanished: false, startedTls };
        }
        if (budget <= 0) {
          client.destroy();
          return { vanished: true, startedTls };
        }
        await pause(script.gap);
      }
      if (action.kind === 'send' && action.expect) {
        // A client that did not wait for the greeting must not take it for the answer.
        const greeting = await client.lineAfter(0, /^/, ANSWER_BOUND_MS);
        const answerFrom = Math.max(
          offset,
          greeting === undefined ? 0 : Buffer.byteLength(greeting) + 2,
        );
        const line = await client.lineAfter(answerFrom, action.expect.until, ANSWER_BOUND_MS);
        if (line === undefined) {
          problems.push(
            `no answer matching ${String(action.expect.until)} within ${ANSWER_BOUND_MS} ms to ${printable(bytes)}`,
          );
          return { vanished: false, startedTls };
        }
        if (action.expect.is && !action.expect.is.test(line)) {
          problems.push(
            `answered ${JSON.stringify(line)} to ${printable(bytes)}, expected ${String(action.expect.is)}`,
          );
        }
      }
    }
    if (script.ending === 'vanish') {
      client.destroy();
      return { vanished: true, startedTls };
    }
    return { vanished: false, startedTls };
  }

  /** Ends the client's side as scripted and waits for every connection of the case to be gone. */
  private async finish(
    client: ClientConnection,
    script: ClientScript,
    vanished: boolean,
    problems: string[],
  ): Promise<void> {
    if (!vanished && !client.closed) {
      if (script.ending === 'half-close') client.end();
      const bound = CLOSE_BOUND_MS + (script.ending === 'silent' ? this.idleTimeoutMs : 0);
      // After a login (or an SMTP pass-through) the client talks to the server: no idle clock of ours.
      const spliced = (): boolean =>
        this.proxy.logs.lines.some((line) =>
          /"event":"(?:login|unauthenticated_passthrough)"/.test(line),
        );
      const settled = await waitFor(
        () => client.closed || (script.ending === 'silent' && spliced()),
        bound,
      );
      if (!client.closed) {
        if (!settled)
          problems.push(
            `the connection was still open ${bound} ms after the client's ${script.ending}`,
          );
        client.destroy();
      }
    }
    // The session itself must end too: a login still under way after the client left would
    // otherwise talk to the upstream during the next case.
    const ended = await waitFor(
      () =>
        this.proxy.logs.lines.some((line) => /"event":"(?:disconnect|session_error)"/.test(line)),
      CLOSE_BOUND_MS,
    );
    if (!ended)
      problems.push(
        `the session did not end within ${CLOSE_BOUND_MS} ms of the client's ${script.ending}`,
      );
    const gone = await waitFor(
      () => this.proxy.listener.connections.size === 0 && this.upstream.openConnections === 0,
      CLOSE_BOUND_MS,
    );
    if (!gone) {
      problems.push(
        `connections left open: ${this.proxy.listener.connections.size} from the client, ${this.upstream.openConnections} upstream`,
      );
      // Cut them off, so that the next case (a shrinking step, say) starts from a clean slate.
      for (const socket of this.proxy.listener.connections) socket.destroy();
      this.upstream.dropConnections();
    }
  }

  /** The output up to a STARTTLS go-ahead the client did not follow with a handshake. */
  private beforeUnansweredStartTls(output: Buffer): Buffer {
    let start = 0;
    for (;;) {
      const end = output.indexOf('\r\n', start);
      if (end < 0) return output;
      if (this.rules.startTlsGoAhead.test(output.subarray(start, end).toString('latin1')))
        return output.subarray(0, end + 2);
      start = end + 2;
    }
  }
}

function pause(gapMs: ClientScript['gap']): Promise<void> {
  if (gapMs === 0) return Promise.resolve();
  if (gapMs === 'tick') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, gapMs));
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

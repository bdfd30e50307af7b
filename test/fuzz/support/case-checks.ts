import v8 from 'node:v8';
import vm from 'node:vm';
import type { AuthenticatorCall } from './accounts.js';
import type { ClientScript } from './client-script.js';
import { decodeXoauth2, type UpstreamRecord } from './fuzz-upstream.js';
import type { ProtocolRules } from './protocol-rules.js';

/** The checks every fuzz conversation goes through once it is over, on what it left behind. */

/** How much more memory than at the start a fuzz process may hold. */
const MEMORY_BOUND_BYTES = 384 * 1024 * 1024;

/**
 * The client's lines, split at any line ending a client may use (CRLF, LF, or a bare CR). A user
 * name that is one of these lines' text is what the client itself gave as its user name.
 */
export function clientLines(script: ClientScript): string[] {
  const sent = Buffer.concat(script.actions.flatMap((a) => (a.kind === 'send' ? [a.bytes] : [])));
  return sent.toString('utf8').split(/\r\n|\r|\n/);
}

/**
 * Errors, unexpected failures and secrets in the log lines of a case. A user name is logged by
 * design; when a client itself wrote a password into it (a mutation that deleted the line end
 * between USER and PASS, say), that is not a leak of ours, so such a user name is not scanned.
 * One that holds a line end the client used, though, is: the proxy merged two of its commands.
 */
export function logProblems(
  lines: readonly string[],
  secrets: readonly string[],
  sentLines: readonly string[],
): string[] {
  const problems: string[] = [];
  for (const line of lines) {
    const entry = JSON.parse(line) as { level?: number; event?: string; user?: unknown };
    if (entry.event === 'session_error' || (entry.level ?? 0) >= 50)
      problems.push(`logged: ${line}`);
    let scanned = line;
    const user = entry.user;
    if (typeof user === 'string' && user !== '' && sentLines.some((sent) => sent.includes(user))) {
      scanned = scanned.split(JSON.stringify(user).slice(1, -1)).join('');
    }
    for (const secret of secrets) {
      if (
        secret !== '' &&
        (scanned.includes(secret) || scanned.includes(JSON.stringify(secret).slice(1, -1)))
      ) {
        problems.push(`a secret (${JSON.stringify(secret)}) is in the log: ${line}`);
      }
    }
  }
  return problems;
}

let baseline: number | undefined;
let collectGarbage: (() => void) | undefined;

/** Heap and buffer memory beyond what the process held at its first case. */
export function memoryProblems(): string[] {
  const used = (): number => {
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
  baseline ??= used();
  if (used() - baseline <= MEMORY_BOUND_BYTES) return [];
  // Garbage is not growth: collect before concluding anything.
  if (!collectGarbage) {
    v8.setFlagsFromString('--expose-gc');
    collectGarbage = vm.runInNewContext('gc') as () => void;
  }
  collectGarbage();
  const grown = used() - baseline;
  return grown <= MEMORY_BOUND_BYTES
    ? []
    : [`memory grew by ${Math.round(grown / 1024 / 1024)} MB`];
}

/**
 * What reached the upstream before the login that should not have: lines outside the protocol's
 * XOAUTH2 exchange (an SMTP pass-through's first line aside), and XOAUTH2 responses carrying
 * credentials the authenticator did not hand out in this case.
 */
export function upstreamProblems(
  rules: ProtocolRules,
  records: readonly UpstreamRecord[],
  calls: readonly AuthenticatorCall[],
  logs: readonly string[],
): string[] {
  const problems: string[] = [];
  const unused = calls
    .filter((call) => call.credentials !== undefined)
    .map((call) => call.credentials);
  const passedThrough = logs.some((line) => line.includes('"event":"unauthenticated_passthrough"'));
  for (const record of records) {
    record.lines.forEach((line, index) => {
      const base64 = rules.xoauth2In(line);
      if (base64 !== undefined) {
        const sent = decodeXoauth2(base64);
        const match = unused.findIndex(
          (c) =>
            c !== undefined &&
            sent !== undefined &&
            c.user === sent.user &&
            c.accessToken === sent.token,
        );
        if (match < 0)
          problems.push(
            `upstream got an XOAUTH2 the authenticator never handed out: ${JSON.stringify(line)}`,
          );
        else unused.splice(match, 1);
        return;
      }
      const lastOfPassThrough =
        record.state === 'passed-through' && index === record.lines.length - 1 && passedThrough;
      if (!lastOfPassThrough && !rules.allowedUpstream(line))
        problems.push(`upstream got before the login: ${JSON.stringify(line)}`);
    });
  }
  return problems;
}

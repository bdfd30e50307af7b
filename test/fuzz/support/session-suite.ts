import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseAccounts, type CaseAccounts } from './accounts.js';
import { check, runsFor, suppressed, timeoutFor } from './runs.js';
import type { ClientScript } from './client-script.js';
import type { ProtocolRules } from './protocol-rules.js';
import { FuzzTarget } from './session-fuzzer.js';

/** Makes a protocol's conversations for a case's accounts; the flag says whether STARTTLS is offered. */
export type ConversationMaker = (
  accounts: CaseAccounts,
  offersStartTls: boolean,
) => fc.Arbitrary<ClientScript>;

/**
 * The socket-level fuzz suite of one protocol: conversations that follow the protocol, checked
 * against the model's answers, on a listener with a realistic idle timeout; and hostile ones on a
 * listener whose idle timeout is short, so silent clients are cut off quickly. Both offer local
 * STARTTLS. See `session-fuzzer.ts` for what every conversation must satisfy.
 */
export function sessionFuzzSuite(
  name: string,
  rules: ProtocolRules,
  polite: ConversationMaker,
  hostile: ConversationMaker,
): void {
  const politeRuns = runsFor('session', 60);
  const hostileRuns = runsFor('session', 100);
  let politeTarget: FuzzTarget;
  let hostileTarget: FuzzTarget;

  beforeAll(async () => {
    [politeTarget, hostileTarget] = await Promise.all([
      FuzzTarget.start(rules, { idleTimeoutMs: 5_000, localStartTls: true }),
      FuzzTarget.start(rules, { idleTimeoutMs: 300, localStartTls: !suppressed('F10') }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([politeTarget?.stop(), hostileTarget?.stop()]);
  });

  describe(`${name} before login, fuzzed`, () => {
    it(
      'answers conversations that follow the protocol as the model says, within the bounds',
      async () => {
        const cases = caseAccounts.chain((accounts) =>
          polite(accounts, true).map((script) => ({ accounts, script })),
        );
        await check(
          `${name} conversations`,
          fc.asyncProperty(cases, async ({ accounts, script }) => {
            expect(await politeTarget.run(accounts, script)).toEqual([]);
          }),
          politeRuns,
        );
      },
      timeoutFor(politeRuns, 2_000),
    );

    it(
      'survives broken and hostile clients: valid answers, no hang, no leak, nothing upstream',
      async () => {
        const cases = caseAccounts.chain((accounts) =>
          hostile(accounts, !suppressed('F10')).map((script) => ({ accounts, script })),
        );
        await check(
          `${name} hostile conversations`,
          fc.asyncProperty(cases, async ({ accounts, script }) => {
            expect(await hostileTarget.run(accounts, script)).toEqual([]);
          }),
          hostileRuns,
        );
      },
      timeoutFor(hostileRuns, 2_000),
    );
  });
}

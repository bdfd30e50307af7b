/**
 * The soak's client traffic through the proxy: long-lived IMAP sessions looping
 * EXAMINE / FETCH / NOOP, SMTP sends at a steady rate, and a burst of simultaneous logins.
 * Every failure is counted and its first messages kept; nothing is retried, so a count of zero
 * means every single operation succeeded.
 */
import { sleep } from '../context.js';
import { headers } from '../mail.js';
import type { Credentials } from '../protocols/credentials.js';
import { expectReply } from '../protocols/credentials.js';
import { imapExamineInbox, imapFetchAll, imapLogin, imapNoop } from '../protocols/imap.js';
import { smtpLogin, smtpReply, smtpSend } from '../protocols/smtp.js';
import type { Endpoint, Wire } from '../wire.js';

/** Only the first failures are kept: the count says how many, these say why. */
const KEPT_FAILURES = 10;
/** SMTP sends allowed in flight; beyond that a tick is skipped and counted, never queued. */
const SMTP_IN_FLIGHT = 16;
const SMTP_BODY = Buffer.from('A small soak message.\r\n');

/** What the traffic has done so far. */
export class Tally {
  logins = 0;
  examines = 0;
  fetches = 0;
  noops = 0;
  smtpSent = 0;
  smtpSkipped = 0;
  errors = 0;
  readonly failures: string[] = [];

  fail(step: string, err: unknown): void {
    this.errors += 1;
    if (this.failures.length < KEPT_FAILURES)
      this.failures.push(`${step}: ${err instanceof Error ? err.message : String(err)}`);
  }

  operations(): number {
    return this.logins + this.examines + this.fetches + this.noops + this.smtpSent;
  }
}

/** Opens `count` proxy sessions, `concurrency` logins at a time; failures are tallied, not thrown. */
export async function openSessions(
  count: number,
  concurrency: number,
  endpoint: Endpoint,
  credentials: Credentials,
  tally: Tally,
): Promise<Wire[]> {
  const wires: Wire[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        next += 1;
        try {
          wires.push(await imapLogin('proxy', endpoint, credentials));
          tally.logins += 1;
        } catch (err) {
          tally.fail('IMAP login', err);
        }
      }
    }),
  );
  return wires;
}

/**
 * One session's loop until `deadline` (performance.now() time): EXAMINE INBOX, FETCH the message,
 * NOOP, pause. The first pause is random so the sessions' rounds spread over the think time.
 */
export async function sessionLoop(
  wire: Wire,
  deadline: number,
  thinkMs: number,
  tally: Tally,
): Promise<void> {
  await sleep(Math.random() * thinkMs);
  while (performance.now() < deadline) {
    let step = 'IMAP EXAMINE';
    try {
      await imapExamineInbox(wire);
      tally.examines += 1;
      step = 'IMAP FETCH';
      if ((await imapFetchAll(wire, 1)) <= 0) throw new Error('empty FETCH response');
      tally.fetches += 1;
      step = 'IMAP NOOP';
      await imapNoop(wire);
      tally.noops += 1;
    } catch (err) {
      tally.fail(step, err);
      return; // the session is broken; it stays counted as an error
    }
    await sleep(Math.min(thinkMs, Math.max(0, deadline - performance.now())));
  }
}

/** One message through the proxy on a fresh authenticated connection, ending with QUIT. */
export async function sendOne(
  endpoint: Endpoint,
  credentials: Credentials,
  upstreamCa: Buffer,
  serial: number,
): Promise<void> {
  const wire = await smtpLogin('proxy', endpoint, credentials, upstreamCa);
  try {
    const header = headers(credentials.user, 'soak-recipient@example.net', `soak ${serial}`);
    await smtpSend(wire, credentials.user, 'soak-recipient@example.net', header, SMTP_BODY, 1);
    wire.send('QUIT\r\n');
    expectReply(await smtpReply(wire), /^221 /, 'SMTP QUIT');
  } finally {
    wire.close();
  }
}

/** Sends `perSecond` messages a second until `deadline`; resolves when the last send has settled. */
export async function smtpSender(
  endpoint: Endpoint,
  credentials: Credentials,
  upstreamCa: Buffer,
  perSecond: number,
  deadline: number,
  tally: Tally,
): Promise<void> {
  if (perSecond <= 0) return;
  const interval = 1_000 / perSecond;
  const inFlight = new Set<Promise<void>>();
  let serial = 0;
  while (performance.now() < deadline) {
    if (inFlight.size >= SMTP_IN_FLIGHT) tally.smtpSkipped += 1;
    else {
      serial += 1;
      const send: Promise<void> = sendOne(endpoint, credentials, upstreamCa, serial).then(
        () => {
          tally.smtpSent += 1;
        },
        (err: unknown) => tally.fail('SMTP send', err),
      );
      inFlight.add(send);
      void send.finally(() => inFlight.delete(send));
    }
    await sleep(Math.min(interval, Math.max(0, deadline - performance.now())));
  }
  await Promise.all(inFlight);
}

/** Closes sessions, half with a polite LOGOUT and half by dropping the connection, as real clients do. */
export async function closeSessions(wires: readonly Wire[], tally: Tally): Promise<void> {
  await Promise.all(
    wires.map(async (wire, index) => {
      if (index % 2 === 1) {
        wire.close();
        return;
      }
      try {
        wire.send('Z LOGOUT\r\n');
        expectReply(
          await wire.lineMatching((line) => line.startsWith('Z ')),
          /^Z OK/,
          'IMAP LOGOUT',
        );
      } catch (err) {
        tally.fail('IMAP LOGOUT', err);
      } finally {
        wire.close();
      }
    }),
  );
}

/** What a burst of simultaneous logins measured. */
export interface BurstResult {
  readonly accepted: number;
  /** Connect to tagged OK, of each accepted login. */
  readonly perLoginMs: number[];
  readonly totalMs: number;
}

/** `count` logins started at the same moment, each proven usable with a NOOP, then all closed. */
export async function loginBurst(
  count: number,
  endpoint: Endpoint,
  credentials: Credentials,
  tally: Tally,
): Promise<BurstResult> {
  const started = performance.now();
  const perLoginMs: number[] = [];
  const wires: Wire[] = [];
  await Promise.all(
    Array.from({ length: count }, async () => {
      try {
        const wire = await imapLogin('proxy', endpoint, credentials);
        perLoginMs.push(performance.now() - started);
        wires.push(wire);
        tally.logins += 1;
        await imapNoop(wire);
        tally.noops += 1;
      } catch (err) {
        tally.fail('burst login', err);
      }
    }),
  );
  const totalMs = performance.now() - started;
  await closeSessions(wires, tally);
  return { accepted: perLoginMs.length, perLoginMs, totalMs };
}

/**
 * The first login after start pays one key derivation (PBKDF2, 1,200,000 rounds) and must not hold
 * up anyone else meanwhile. Measured on a freshly started proxy: the main account's first login
 * alone, then the second account's first login while a session of the first runs NOOPs back to back.
 */
import { randomBytes } from 'node:crypto';
import { deriveKey, DEFAULT_ITERATIONS } from '../../src/tokens/vault/key-derivation.js';
import type { Context } from '../context.js';
import { imapLogin, imapNoop } from '../protocols/imap.js';
import type { Row, Target } from '../results.js';
import { max, median } from '../stats.js';

/**
 * A proxy whose event loop waited for the derivation would leave a NOOP unanswered for most of
 * the login; one that does not still answers within a fraction of it even when the machine is
 * busy (PBKDF2 keeps one of the two cores). Judged on the worst NOOP as a share of the login.
 */
const NOT_BLOCKED: Target = { text: '< 1/4 of that login', met: (share) => share < 0.25 };

/** Must run first on a freshly started proxy. */
export async function firstLogin(context: Context): Promise<Row[]> {
  context.progress('first login after start');
  const started = performance.now();
  const session = await imapLogin('proxy', context.imap.proxy, context.main);
  const firstMs = performance.now() - started;

  try {
    const derivationStarted = performance.now();
    await deriveKey('reference', randomBytes(16), DEFAULT_ITERATIONS);
    const derivationMs = performance.now() - derivationStarted;

    const quiet: number[] = [];
    for (let i = 0; i < 200; i += 1) {
      const noopStarted = performance.now();
      await imapNoop(session);
      quiet.push(performance.now() - noopStarted);
    }

    const during: number[] = [];
    let loggingIn = true;
    const loop = (async () => {
      while (loggingIn) {
        const noopStarted = performance.now();
        await imapNoop(session);
        during.push(performance.now() - noopStarted);
      }
    })();
    const secondStarted = performance.now();
    const second = await imapLogin('proxy', context.imap.proxy, context.second).finally(() => {
      loggingIn = false;
    });
    const secondMs = performance.now() - secondStarted;
    await loop;
    second.close();

    return [
      {
        id: 'login_first_after_start',
        label: 'IMAP login, first after start',
        unit: 'ms',
        proxy: firstMs,
        note: `includes one PBKDF2 derivation (${derivationMs.toFixed(0)} ms in the benchmark process) and the first upstream TLS handshake`,
      },
      {
        id: 'login_first_second_account',
        label: 'first login of a 2nd account, NOOPs running',
        unit: 'ms',
        proxy: secondMs,
      },
      {
        id: 'noop_during_derivation_worst',
        label: 'NOOP during that derivation, worst',
        unit: 'ms',
        proxy: max(during),
        judged: max(during) / secondMs,
        target: NOT_BLOCKED,
        note:
          `${during.length} NOOPs completed during the ${secondMs.toFixed(0)} ms login, the worst taking ${((100 * max(during)) / secondMs).toFixed(0)} % of it ` +
          `(median ${median(during).toFixed(3)} ms; ${median(quiet).toFixed(3)} ms before it, worst ${max(quiet).toFixed(2)} ms)`,
      },
    ];
  } finally {
    session.close();
  }
}

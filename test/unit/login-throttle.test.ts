import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/auth/login-throttle.js';

/** A throttle whose sleeps are recorded instead of waited. */
function recordingThrottle(): { throttle: LoginThrottle; slept: number[] } {
  const slept: number[] = [];
  const throttle = new LoginThrottle(
    { baseDelayMs: 500, maxDelayMs: 30_000, windowMs: 60_000 },
    async (ms) => {
      slept.push(ms);
    },
  );
  return { throttle, slept };
}

describe('slowing down password guessing', () => {
  it('doubles the wait after each failure for an account from one address, up to a cap', async () => {
    const { throttle, slept } = recordingThrottle();
    for (let i = 0; i < 10; i += 1) await throttle.failed('john@example.com', '10.0.0.1');
    expect(slept).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });

  it('counts each address separately, and all addresses together four times more gently', async () => {
    const { throttle, slept } = recordingThrottle();
    for (let i = 1; i <= 8; i += 1) await throttle.failed('john@example.com', `10.0.0.${i}`);
    // Eight addresses, one failure each: the account-wide count (8) gives ceil(8/4) = 2 steps at most.
    expect(slept).toEqual([500, 500, 500, 500, 1000, 1000, 1000, 1000]);
  });

  it('does not slow other accounts, and a correct login clears its address', async () => {
    const { throttle, slept } = recordingThrottle();
    await throttle.failed('john@example.com', '10.0.0.1');
    await throttle.failed('john@example.com', '10.0.0.1');
    await throttle.failed('jane@example.com', '10.0.0.1');
    throttle.succeeded('john@example.com', '10.0.0.1');
    await throttle.failed('john@example.com', '10.0.0.1');
    expect(slept).toEqual([500, 1000, 500, 500]);
  });

  it('ignores the case of the account name', async () => {
    const { throttle, slept } = recordingThrottle();
    await throttle.failed('John@Example.com', '::1');
    await throttle.failed('john@example.com', '::1');
    expect(slept).toEqual([500, 1000]);
  });
});

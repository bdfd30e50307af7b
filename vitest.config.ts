import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Real peers (Dovecot, the identity provider) are started per test file; two cores do not
    // take more than two files at once without timing noise.
    maxWorkers: 2,
    reporters: ['default'],
  },
});

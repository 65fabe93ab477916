import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Crash and server tests spawn processes and use the disk; 2 cores run two files at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});

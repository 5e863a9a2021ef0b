import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites each start their own embedded services and IPFS nodes; two cores, so two at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
})

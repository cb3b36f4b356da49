/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Names a missing tool (nginx, moto_server, ...) once, with its install line, before any test runs.
  globalSetup: '<rootDir>/test/global-setup.ts',
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
  },
  // e2e suites start real nginx + pool processes: give them room, and fail loudly on leaks.
  testTimeout: 60_000,
  // The machine has 2 cores and every e2e file runs its own stack under load: one file at a time
  // keeps the load figures honest and the suite deterministic.
  maxWorkers: 1,
};

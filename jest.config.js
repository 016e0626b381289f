/** Tests live in server/test; TypeScript is compiled by SWC (types are checked by `npm run typecheck`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/server'],
  testMatch: ['**/test/**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023', parser: { syntax: 'typescript' } }, module: { type: 'commonjs', ignoreDynamic: true } }] },
  testTimeout: 60000,
  maxWorkers: 2,
  // A worker that has run many files holds a large heap (each file's module registry);
  // recycle it rather than let later files (and their forced collections) pay for it.
  workerIdleMemoryLimit: '1GB',
};

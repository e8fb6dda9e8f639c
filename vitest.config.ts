import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC emits decorator metadata, which Nest's DI needs and esbuild does not produce.
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['libs/**/src/**/*.spec.ts', 'test/**/*.spec.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Results directories of the fault and security suites; after the run they write test/faults/results.json (and
    // .tmp/reports/reliability.md, which `npm run report` copies to docs/) and test/security/results.json. All are
    // git-ignored: a test run leaves the tree clean.
    globalSetup: ['test/faults/global-setup.ts', 'test/security/global-setup.ts'],
    reporters: ['default'],
  },
});

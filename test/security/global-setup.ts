// Vitest global setup for the security suite: one fresh fragments directory per run, handed to the spec files
// (inject('securityResultsDir')); after the run, if any check recorded a result, test/security/results.json is
// written from them. Runs that include no security spec write nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TestProject } from 'vitest/node';
import { readChecks, writeChecks } from './report.js';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'security-results-'));
  project.provide('securityResultsDir', dir);
  return () => {
    try {
      const checks = readChecks(dir);
      if (checks.length > 0) {
        const file = writeChecks(checks);
        console.log(`security suite: ${checks.filter((c) => c.pass).length}/${checks.length} checks passed; wrote ${relative(process.cwd(), file)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

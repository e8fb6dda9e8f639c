// Vitest global setup for the fault suite: one fresh results directory per run, handed to the scenario files
// (inject('faultResultsDir')); after the run, if any scenario recorded a result, test/faults/results.json and the
// reliability report (.tmp/reports/, copied to docs/ by `npm run report`) are generated from them. Runs that
// include no fault scenario write nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { readResults, writeReport } from './report.js';

export default function setup(project: TestProject): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fault-results-'));
  project.provide('faultResultsDir', dir);
  const startedAt = Date.now();
  return async () => {
    try {
      const results = readResults(dir);
      if (results.length > 0) {
        const written = await writeReport(results, { startedAt, finishedAt: Date.now() });
        console.log(`fault suite: ${results.filter((r) => r.pass).length}/${results.length} scenarios passed; wrote ${written.join(', ')}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

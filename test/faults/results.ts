// The collector: every scenario appends its result as one JSON fragment in the run's results directory
// (scenario files run in separate worker processes). test/faults/global-setup.ts creates that directory and,
// after the run, turns the fragments into test/faults/results.json and the reliability report (report.ts).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { ROOT } from '../support/processes.js';
import type { RecordedResult, ScenarioResult } from './report.js';

export type { ScenarioResult };

declare module 'vitest' {
  export interface ProvidedContext {
    faultResultsDir: string;
  }
}

/** Where this run's fragments go: from the global setup, else a fixed directory under .tmp/. */
export function resultsDir(): string {
  let dir: string | undefined;
  try {
    dir = inject('faultResultsDir');
  } catch {
    dir = undefined;
  }
  dir ??= join(ROOT, '.tmp', 'fault-results');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Appends one scenario's result (atomically: written aside, then renamed into place). */
export function recordResult(result: RecordedResult): void {
  const dir = resultsDir();
  const slug = result.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 80);
  const file = join(dir, `${slug}.json`);
  writeFileSync(`${file}.part`, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(`${file}.part`, file);
}


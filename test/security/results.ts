// The collector: every security check writes its outcome as one JSON fragment in the run's results directory
// (spec files run in separate worker processes). global-setup.ts creates that directory and, after the run,
// merges the fragments into test/security/results.json (report.ts).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import type { RecordedCheck } from './report.js';

declare module 'vitest' {
  export interface ProvidedContext {
    securityResultsDir: string;
  }
}

/** Where this run's fragments go: from the global setup, else a fixed directory under .tmp/ (never merged). */
function resultsDir(): string {
  let dir: string | undefined;
  try {
    dir = inject('securityResultsDir');
  } catch {
    dir = undefined;
  }
  dir ??= fileURLToPath(new URL('../../.tmp/security-results', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes one check's outcome atomically (aside, then renamed into place). */
export function recordCheck(check: RecordedCheck): void {
  const dir = resultsDir();
  const file = join(dir, `${String(check.order).padStart(3, '0')}-${check.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60)}.json`);
  writeFileSync(`${file}.part`, `${JSON.stringify(check, null, 2)}\n`);
  renameSync(`${file}.part`, file);
}

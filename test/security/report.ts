// The security suite's fragments merged into test/security/results.json: an array of { name, pass, details },
// in the suite's order. Called by global-setup.ts after the run; pure Node.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SECURITY_RESULTS_JSON = fileURLToPath(new URL('./results.json', import.meta.url));

export interface SecurityCheckResult {
  name: string;
  pass: boolean;
  /** What was measured, in words; on a failure also the failed assertion. */
  details: string;
}

/** As a fragment holds it: plus the sort position (kept out of results.json). */
export interface RecordedCheck extends SecurityCheckResult {
  order: number;
}

export function readChecks(dir: string): RecordedCheck[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as RecordedCheck)
    .sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

export function writeChecks(checks: readonly RecordedCheck[]): string {
  const entries: SecurityCheckResult[] = checks.map(({ name, pass, details }) => ({ name, pass, details }));
  writeFileSync(SECURITY_RESULTS_JSON, `${JSON.stringify(entries, null, 2)}\n`);
  return SECURITY_RESULTS_JSON;
}

// The last result of each benchmark, kept in git (docs/results/NAME.json) so that the generated reports
// (docs/benchmarks.md, docs/scaling.md) always cover every benchmark: bench/results/ is git-ignored, and a
// fresh clone running one benchmark would otherwise render a report of that one alone.
// bench/run.mjs records a benchmark's result here once it wrote a fresh bench/results/NAME.json and exited 0;
// the report generators read only from here.
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { RESULTS_DIR, ROOT } from './common.mjs';

export const RECORDED_DIR = `${ROOT}docs/results`;

/** Copies bench/results/NAME.json to docs/results/NAME.json if it was written at or after `sinceMs`. */
export function recordResult(name, sinceMs) {
  const fresh = `${RESULTS_DIR}/${name}.json`;
  if (!existsSync(fresh) || statSync(fresh).mtimeMs < sinceMs) return false;
  mkdirSync(RECORDED_DIR, { recursive: true });
  copyFileSync(fresh, `${RECORDED_DIR}/${name}.json`);
  return true;
}

/** The recorded result of `name`, or undefined. */
export function recordedResult(name) {
  const file = `${RECORDED_DIR}/${name}.json`;
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

/** The recorded results of `names` that exist, in that order. */
export const recordedResults = (names) => names.map(recordedResult).filter(Boolean);

// `npm run bench` runs every benchmark; `npm run bench -- NAME [NAME...]` runs some. Each runs in its own
// node process (bench/NAME.mjs), prints its tables and JSON and writes bench/results/NAME.json, which is
// recorded as docs/results/NAME.json when the benchmark succeeds; then docs/benchmarks.md, docs/charts/*.svg
// and docs/scaling.md are rendered from the recorded results (each benchmark's last). Every process a
// benchmark starts is reported here by PID and killed if it outlives the benchmark.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RESULTS_DIR, ROOT, round, sleep } from './lib/common.mjs';
import { recordResult } from './lib/recorded-results.mjs';
import { renderReport } from './report.mjs';
import { renderScaling } from './scaling.mjs';

const BENCHMARKS = ['overhead', 'propagation', 'scale', 'registration', 'balancing', 'routing', 'proxy'];
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 300_000);

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = requested.filter((name) => !BENCHMARKS.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; choose from: ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}
const selected = requested.length > 0 ? BENCHMARKS.filter((name) => requested.includes(name)) : BENCHMARKS;

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let current;
let interrupted = false;
/** A signal stops the running benchmark (it cleans up) and skips the rest. */
const stopCurrent = () => {
  interrupted = true;
  if (current?.exitCode === null) try { process.kill(current.pid, 'SIGTERM'); } catch { /* gone */ }
};
process.on('SIGINT', stopCurrent);
process.on('SIGTERM', stopCurrent);

/** Runs bench/NAME.mjs; resolves with its exit code, after killing whatever it left running. */
async function runOne(name) {
  const reported = new Map();
  const child = fork(`${ROOT}bench/${name}.mjs`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  current = child;
  child.on('message', (message) => {
    if (message?.type === 'pid') reported.set(message.pid, message.name);
  });
  const timer = setTimeout(() => {
    console.error(`\n${name}: still running after ${TIMEOUT_MS / 1000} s; stopping it`);
    try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
    setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000).unref();
  }, TIMEOUT_MS);
  const code = await new Promise((resolve) => child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1))));
  clearTimeout(timer);
  current = undefined;
  // Anything it started and left behind goes now, by PID (its own cleanup normally did this already).
  await sleep(200);
  const leftovers = [...reported].filter(([pid]) => alive(pid));
  for (const [pid, what] of leftovers) {
    console.error(`${name}: ${what} (pid ${pid}) outlived the benchmark; killing it`);
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  return code;
}

const startedAt = Date.now();
const summary = [];
for (const name of selected) {
  if (interrupted) {
    summary.push({ benchmark: name, status: 'skipped (interrupted)', seconds: 0, goals: '' });
    continue;
  }
  console.log(`\n==================== ${name} ====================`);
  const t0 = Date.now();
  const code = await runOne(name);
  const file = `${RESULTS_DIR}/${name}.json`;
  let goals = '';
  if (code === 0 && recordResult(name, t0)) {
    const result = JSON.parse(readFileSync(file, 'utf8'));
    goals = result.goals.map((g) => `${g.met ? 'met' : 'MISSED'}: ${g.description}`).join('; ');
  }
  summary.push({ benchmark: name, status: code === 0 ? 'ok' : `FAILED (exit ${code})`, seconds: round((Date.now() - t0) / 1000, 1), goals });
}

const files = [...await renderReport(), ...await renderScaling()];
console.log(`\nwrote ${files.join(', ')}`);
console.log('\nsummary');
console.table(summary);
console.log(`total ${round((Date.now() - startedAt) / 1000, 1)} s for ${selected.join(', ')}`);
process.exit(summary.every((s) => s.status === 'ok') ? 0 : 1);

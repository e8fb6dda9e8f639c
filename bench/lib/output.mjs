// What every benchmark leaves behind: a console table, the JSON on stdout, and bench/results/NAME.json
// with the run's date, machine and versions.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { RESULTS_DIR, ROOT, round } from './common.mjs';
import { etcdVersion } from './etcd.mjs';

const require = createRequire(`${ROOT}package.json`);

/** The installed version of a package, also for packages whose "exports" hide package.json. */
function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;
  } catch {
    try {
      let dir = dirname(require.resolve(name));
      while (dir !== dirname(dir)) {
        const file = `${dir}/package.json`;
        if (existsSync(file)) {
          const pkg = JSON.parse(readFileSync(file, 'utf8'));
          if (pkg.name === name) return pkg.version;
        }
        dir = dirname(dir);
      }
    } catch { /* not installed */ }
    return 'unknown';
  }
}

export function machine() {
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    loadAvg1m: round(loadavg()[0], 2),
    node: process.version,
    etcd: etcdVersion(),
    versions: Object.fromEntries(
      ['nestjs-etcd-discovery', '@grpc/grpc-js', '@nestjs/core', '@nestjs/microservices', 'etcd3', 'hdr-histogram-js'].map((name) => [name, packageVersion(name)]),
    ),
  };
}

export function printTable(title, rows) {
  console.log(`\n${title}`);
  console.table(rows);
}

/** A goal as data: `value op target`, met or not. */
export function goal(description, value, op, target) {
  const met = op === '>=' ? value >= target : op === '<=' ? value <= target : op === '<' ? value < target : op === '>' ? value > target : value === target;
  return { description, value, op, target, met };
}

/**
 * Writes bench/results/NAME.json: the headline fields first (what the issue asks for), then goals,
 * details for the report, and the run's machine. Prints the goals as a table and the JSON.
 */
export function writeResult(name, { headline, goals = [], details = {}, notes = [], startedAt }) {
  const result = {
    benchmark: name,
    ...headline,
    goals,
    notes,
    details,
    durationSec: startedAt ? round((Date.now() - startedAt) / 1000, 1) : undefined,
    machine: { ...machine(), loadAvg1mAtStart: details.loadAvgAtStart },
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}/${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
  if (goals.length > 0) {
    printTable(`${name}: goals`, goals.map((g) => ({ goal: g.description, value: g.value, target: `${g.op} ${g.target}`, met: g.met ? 'yes' : 'NO' })));
  }
  console.log(`\n${name}.json ${JSON.stringify(headline)}`);
  return result;
}

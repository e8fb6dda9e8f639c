// The generator: the fault suite's results as test/faults/results.json and a reliability report (a table of the
// same entries, with the date and the machine of the run), both git-ignored. Called by global-setup.ts after the
// run; pure Node. `npm run report` copies the report to docs/reliability.md: a test run never rewrites docs/.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RESULTS_JSON = join(ROOT, 'test', 'faults', 'results.json');
/** The last complete run's report; scripts/report.mjs copies it to docs/reliability.md. */
export const RELIABILITY_MD = join(ROOT, '.tmp', 'reports', 'reliability.md');

export interface ScenarioResult {
  /** "<number>. <title>", e.g. "3. one greeter cut from etcd longer than its TTL". */
  name: string;
  /** Calls the load client(s) sent during the scenario. */
  calls: number | null;
  failed: number | null;
  allowedFailed: number | null;
  /** Instance keys missing from etcd at the end, or missing longer than the scenario's bound. */
  registrationsLost: number | null;
  /** From the fault healing (or the event) to full recovery; null where nothing has to recover. */
  recoveryMs: number | null;
  pass: boolean;
  /** The bound asserted, in words. */
  bound: string;
  /** Measurements behind the verdict, in words. */
  details: string;
  /** The checks that failed (empty on a pass). */
  failedChecks: string[];
}

/** A result as the collector writes it: plus where and when it ran (kept out of results.json). */
export interface RecordedResult extends ScenarioResult {
  file: string;
  startedAt: number;
  finishedAt: number;
}

export interface RunInfo {
  startedAt: number;
  finishedAt: number;
}

export function readResults(dir: string): RecordedResult[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as RecordedResult)
    .sort((a, b) => scenarioOrder(a.name) - scenarioOrder(b.name) || a.name.localeCompare(b.name));
}

/** "8b. ..." -> 8.2, so entries sort by scenario number. */
function scenarioOrder(name: string): number {
  const match = /^(\d+)([a-z]?)\./.exec(name);
  if (!match) return Number.MAX_SAFE_INTEGER;
  return Number(match[1]) + (match[2] ? (match[2].charCodeAt(0) - 96) / 10 : 0);
}

/** Where a run that left out some scenario files writes its report: never over the committed one. */
export const PARTIAL_DIR = join(ROOT, '.tmp', 'fault-report-partial');

/** How many scenarios each fault spec file defines (`scenario({ ...definition }, body)` calls), by file name. */
export function scenarioCounts(): Map<string, number> {
  const dir = join(ROOT, 'test', 'faults');
  const counts = new Map<string, number>();
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.spec.ts'))) {
    const count = readFileSync(join(dir, name), 'utf8').match(/\bscenario\(\s*\{/g)?.length ?? 0;
    if (count > 0) counts.set(name, count);
  }
  return counts;
}

/**
 * Writes both files; returns their paths. Only a run of every scenario file replaces test/faults/results.json
 * and the report; a partial run (one file, a filter) writes both under .tmp/fault-report-partial/ instead.
 */
export async function writeReport(results: readonly RecordedResult[], run: RunInfo): Promise<string[]> {
  const ran = new Map<string, number>();
  for (const result of results) ran.set(result.file, (ran.get(result.file) ?? 0) + 1);
  const complete = [...scenarioCounts()].every(([file, count]) => (ran.get(file) ?? 0) >= count);
  const [json, markdown] = complete ? [RESULTS_JSON, RELIABILITY_MD] : [join(PARTIAL_DIR, 'results.json'), join(PARTIAL_DIR, 'reliability.md')];
  const entries: ScenarioResult[] = results.map(({ file: _file, startedAt: _startedAt, finishedAt: _finishedAt, ...entry }) => entry);
  mkdirSync(join(json, '..'), { recursive: true });
  mkdirSync(join(markdown, '..'), { recursive: true });
  writeFileSync(json, `${JSON.stringify(entries, null, 2)}\n`);
  writeFileSync(markdown, renderMarkdown(results, run, await machine()));
  return [json, markdown].map((path) => path.slice(ROOT.length));
}

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  etcd: string;
}

async function machine(): Promise<Machine> {
  const etcd = await promisify(execFile)('etcd', ['--version'])
    .then(({ stdout }) => /etcd Version:\s*(\S+)/.exec(stdout)?.[1] ?? 'unknown')
    .catch(() => 'unknown');
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    etcd,
  };
}

const cell = (value: number | null): string => (value === null ? '—' : String(value));
const escape = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Wall time of the scenario files: per file, first start to last end (files run one after another). */
function scenarioWallMs(results: readonly RecordedResult[]): number {
  const files = new Map<string, { from: number; to: number }>();
  for (const result of results) {
    const span = files.get(result.file) ?? { from: result.startedAt, to: result.finishedAt };
    files.set(result.file, { from: Math.min(span.from, result.startedAt), to: Math.max(span.to, result.finishedAt) });
  }
  return [...files.values()].reduce((sum, span) => sum + span.to - span.from, 0);
}

export function renderMarkdown(results: readonly RecordedResult[], run: RunInfo, host: Machine): string {
  const date = new Date(run.finishedAt).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const passed = results.filter((result) => result.pass).length;
  const seconds = (ms: number): string => `${(ms / 1_000).toFixed(0)} s`;
  const lines = [
    '# Reliability: the fault suite',
    '',
    '<!-- Generated by test/faults (report.ts) after a complete run of the suite, published by `npm run report`; do not edit by hand. -->',
    '',
    `Run of ${date} on ${host.cpu}, ${host.cores} cores, ${host.memoryGiB} GiB, ${host.kernel}; Node ${host.node}, ` +
      `etcd ${host.etcd}. The scenarios took ${seconds(scenarioWallMs(results))} of wall time (the whole vitest run ` +
      `${seconds(run.finishedAt - run.startedAt)}). ` +
      `**${passed} of ${results.length} scenarios passed.**`,
    '',
    'Our promise: while at least one instance of a service is able to serve, calls to it succeed, whatever etcd or',
    'the network does; and no live instance stays unregistered for longer than a couple of seconds once etcd can be',
    'reached. Each scenario below runs real processes (etcd, 3 greeter replicas, a client process driving steady',
    'load) and the fault proxy (`test/support/fault-proxy.ts`), and checks its bound. Re-run: `npx vitest run test/faults`',
    '(also part of `npm test`); the same entries are in `test/faults/results.json`.',
    '',
    '| scenario | calls | failed | allowed failed | registrations lost | recovery ms | pass |',
    '| --- | ---: | ---: | ---: | ---: | ---: | :---: |',
    ...results.map(
      (result) =>
        `| ${escape(result.name)} | ${cell(result.calls)} | ${cell(result.failed)} | ${cell(result.allowedFailed)} | ` +
        `${cell(result.registrationsLost)} | ${cell(result.recoveryMs)} | ${result.pass ? 'yes' : '**NO**'} |`,
    ),
    '',
    '## Bounds and measurements',
    '',
    ...results.flatMap((result) => [
      `### ${result.name}`,
      '',
      `- Bound: ${result.bound}`,
      `- Measured: ${result.details}`,
      ...(result.failedChecks.length > 0 ? [`- **Failed:** ${result.failedChecks.join('; ')}`] : []),
      '',
    ]),
    ...METHOD,
  ];
  return `${lines.join('\n')}\n`;
}

/** How the numbers are measured, what the bounds cannot promise, and the documented behaviours; static text. */
const METHOD = [
  '## How it is measured',
  '',
  '- Real processes throughout: etcd 3.4 (a single node, or a 3-node cluster for scenarios 1 and 2) on loopback with',
  '  fresh data directories, 3 greeter replicas (`apps/greeter`, TTL 2 s, drain delay 1 s), and a client process',
  '  (`test/fixtures/load-client.mjs`) driving steady load: about 200 calls/s, every call with a 5 s deadline (8 s in 5), no',
  '  retries unless the scenario says so. Faults between a process and etcd go through the fault proxy',
  '  (`test/support/fault-proxy.ts`: pass, cut, blackhole, delay), placed in that process\'s `ETCD_HOSTS`.',
  '- **calls / failed**: every call the client made during the scenario, and those that did not get a reply.',
  '- **registrations lost**: instance keys of live greeters missing from etcd at the end of the scenario, or',
  '  registered again later than the scenario allows. The registry is sampled from outside every 50 ms through',
  '  etcd\'s HTTP gateway; a key counts as registered again from the first sample from which it stays present, on',
  '  its final lease and never recreated, until the end of the scenario (which lasts long enough for a key left on',
  '  a lease that nobody keeps alive to expire).',
  '- **recovery ms**: from the fault healing (or the event) to full recovery: every instance registered again and,',
  '  where the scenario involves the client\'s watch, a record written after the event visible in the client\'s',
  '  list (or the whole list equal to etcd\'s). 0 means it had already recovered at the first sample after etcd',
  '  answered again. For 7 it is the slowest step from SIGTERM to the replacement being listed by the client; for 8',
  '  the time from the kill to the last failed call; for 12 the slower of a join and a leave reaching the client;',
  '  for 13 from the heal to the running client having listed the prefix again; for 14 from the first write to the',
  '  client listing every instance; for 15 from following the services to every one of them seeing a put; for 16',
  '  from etcd being healthy to the first successful call; for 17 from SIGTERM to the exit; for 18 the slowest',
  '  re-registration after a revoke. `—` where nothing has to recover.',
  '- Scenarios run two at a time, each with its own etcd and namespace; the whole suite is part of `npm test`.',
  '',
  '## What the bounds cannot promise',
  '',
  '- **A crash (8a)**: a client learns that an instance died when its connection to it drops. Calls it had sent',
  '  to that instance before then fail without a retry policy, including calls dispatched between the kill and the',
  '  moment the client\'s event loop processes the reset (a few milliseconds on an idle machine; up to a few hundred',
  '  on a loaded one). The bound therefore requires that every failed call had been routed to the killed instance',
  '  (the peer grpc-js sent it to, read by a client interceptor when the call ends) and that none started more than',
  '  1 s after the kill. With a retry policy on UNAVAILABLE (8b) these calls are retried on another instance,',
  '  except a call whose response headers had already arrived when the connection dropped: grpc-js never retries a',
  '  committed call. 8b allows those (at most 3, each proven committed by grpc-js\'s own retry trace) and no other.',
  '- **A frozen instance (5)**: calls already sent to a process that stops answering wait for it; they succeed if',
  '  it resumes before their deadline (here: 3.5 s pause, 8 s deadline) and fail with DEADLINE_EXCEEDED otherwise.',
  '  New calls leave it as soon as its key expires (at most one TTL).',
  '- **Many services over a slow link (15)**: the etcd3 client sends the watch requests of one process one at a',
  '  time, each after etcd confirmed the previous one. Over a link with round trip R the N-th service followed',
  '  sees changes only about N x R after it was listed (100 services at 120 ms: 12-20 s); its list is right from',
  '  the first listing (well under a second), and changes made meanwhile are replayed once its watch is attached.',
  '',
  '## Documented behaviours',
  '',
  '- **etcd not reachable when a serving app starts**: the app starts and serves gRPC at once; registration retries',
  '  in the background (jittered backoff, at most 1 s apart) and succeeds as soon as etcd answers. The app never',
  '  fails or exits because etcd is down.',
  '- **etcd not reachable when a client waits for a service**: `ClientFactory.getClient()` / `getService()` error',
  '  with `NoLiveInstanceError` after `waitTimeoutMs` (module option `discoveryTimeoutMs`, default 10 s); its message',
  '  says etcd could not be reached and gives the connection error (also logged once by `EtcdDiscovery`). Clients made with',
  '  `createClient()` do not wait: while etcd has never been listed their calls fail at once with `UNAVAILABLE`',
  '  whose details name etcd and the reason (scenario 16), and once listed with no instance, with `UNAVAILABLE`',
  '  naming the service.',
  '- **etcd unreachable later, or this process cut from it**: clients keep routing to the last known list; serving',
  '  apps keep serving; each re-registers (new lease, same key) within about 2 s once etcd can be reached again, and',
  '  watches list again and catch up, compaction included.',
]

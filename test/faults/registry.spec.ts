// What is in etcd and who may read it: garbage under the service prefix (and 10,000 garbage writes), and etcd
// with authentication enabled (simple tokens) restarted under load.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { describe } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { sleep, sleepUntil, timeWhen } from '../support/wait.js';
import { outsider } from './bulk-writer.js';
import { startDecoy } from './decoy.js';
import { callsSummary, failedBetween, ms, probeWatch, record, startedBetween, whenListed } from './observe.js';
import { loggedRegistrations, registeredAgainMs } from './registration-log.js';
import { fatesOf, lastUnanswered } from './registry-sampler.js';
import { LONG_SCENARIO_TIMEOUT_MS, check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, LOAD, TTL_MS, type Scenario } from './scenario.js';

const GARBAGE_WRITES = 10_000;
const GARBAGE_KEYS = 100;
/** Heap growth (after a full GC) that 10,000 garbage writes may cause: far below what keeping them would cost. */
const HEAP_GROWTH_LIMIT = 3 * 2 ** 20;

describe.concurrent('registry contents and access', () => {
  scenarioTest(
    {
      name: '9. garbage under the service prefix',
      bound:
        'every garbage record skipped (or, a dead port, ejected), logged once, never routed a successful call, no crash, 0 failed calls; ' +
        `client heap after ${GARBAGE_WRITES} garbage writes within ${HEAP_GROWTH_LIMIT / 2 ** 20} MiB of before`,
    },
    garbage,
    LONG_SCENARIO_TIMEOUT_MS,
  );

  scenarioTest(
    {
      name: '10. etcd with authentication (simple tokens) restarted',
      bound:
        `leases and watchers recover: 0 failed calls; every instance registered (live lease) within ${BOUND_MS} ms of etcd being back; ` +
        `the client's watch live again within ${BOUND_MS} ms (listed again, and a record written afterwards reaches it within that time of its write)`,
    },
    authRestart,
    LONG_SCENARIO_TIMEOUT_MS,
  );
});

async function garbage(s: Scenario) {
  await s.etcd();
  const greeters = await s.greeters(3);
  // Garbage points at the decoy, so a garbage record that got routed would show up as calls it served.
  const decoy = await startDecoy(s);
  const deadPort = await freePort();
  const client = await s.client({ env: { LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } });
  await s.startLoad(client, LOAD, 500);

  const p = s.prefix;
  const [g1] = greeters;
  const set: Array<[string, string | Buffer]> = [
    [`${p}random-bytes`, randomBytes(256)],
    [`${p}huge-1mib`, record(decoy.address, { pad: 'x'.repeat(2 ** 20) })],
    [`${p}addr-number`, JSON.stringify({ Addr: 12345, Metadata: {} })],
    [`${p}metadata-string`, JSON.stringify({ Addr: decoy.address, Metadata: 'zone-1' })],
    [`${p}metadata-array`, JSON.stringify({ Addr: decoy.address, Metadata: [1, 2] })],
    [`${p}json-array`, JSON.stringify([decoy.address])],
    [`${p}json-null`, 'null'],
    [`${p}json-string`, JSON.stringify(decoy.address)],
    [`${p}port-out-of-range`, record('127.0.0.1:99999')],
    [`${p}truncated-json`, record(decoy.address).slice(0, 20)],
    [`${p}go-delete-op`, JSON.stringify({ Op: 1, Addr: decoy.address })],
    // Sorts before every real key: it claims a live greeter's address first.
    [`${p}0-duplicate-of-greeter-1`, record(g1.address, { zone: 'rogue' })],
    [`${p}nested/deeper`, record(decoy.address)],
    [`${p}`, record(decoy.address)],
    [`${g1.key}/under-a-live-key`, record(decoy.address)],
  ];
  // Outside the prefix altogether: no client may even see these.
  const outside: Array<[string, string]> = [
    [`${s.namespace}/greeter`, record(decoy.address)],
    [`${s.namespace}/greeterx/id`, record(decoy.address)],
  ];
  const deadKey = `${p}dead-port`;
  const writeAt = s.mark('writing the garbage set');
  for (const [key, value] of [...set, ...outside]) await s.view.put(key, value);
  await s.view.put(deadKey, record(`127.0.0.1:${deadPort}`));
  await sleep(300);
  // The same values again: nothing new to log.
  for (const [key, value] of set) await s.view.put(key, value);
  await sleep(500);

  // Warm up, then measure the client's heap around 10,000 garbage writes over 100 keys (each key keeps one kind of
  // garbage, with new content every time, as a misbehaving writer would).
  const writer = outsider(s);
  await writeGarbage(s, writer, 1_000);
  const before = await client.memory();
  const stormAt = s.mark(`${GARBAGE_WRITES} garbage writes`);
  const writesPerSec = await writeGarbage(s, writer, GARBAGE_WRITES);
  const marker = `${p}zz-marker-after-storm`;
  await s.view.put(marker, record(`127.0.0.1:${await freePort()}`));
  const caughtUp = await whenListed(client, marker, 20_000);
  await s.view.delete(marker);
  await sleep(500);
  const after = await client.memory();
  s.mark(`storm done (${Math.round(writesPerSec)} writes/s), client caught up ${ms(caughtUp && caughtUp - stormAt)} after it began`);
  await sleep(1_000);
  const load = await client.stopLoad();
  const listed = await client.instances();
  const inEtcd = new Set((await s.view.range(p)).kvs.map((kv) => kv.key));

  await sleep(200); // let the log file catch up
  const output = s.fullOutput(client.proc);
  const warnings = (key: string): number => output.split('\n').filter((line) => line.includes('WARN') && line.includes(JSON.stringify(key))).length;
  const setKeys = set.map(([key]) => key);
  const dupKey = `${p}0-duplicate-of-greeter-1`;
  // The duplicate claims greeter-1's address first (it sorts first), so the line names it as the holder instead.
  const mentions = (key: string): number => output.split('\n').filter((line) => line.includes('WARN') && line.includes(key)).length;
  const skippedOnce = setKeys.map((key) => ({ key, count: key === dupKey ? mentions(key) : warnings(key) }));
  const notOnce = skippedOnce.filter(({ count }) => count !== 1);
  const g1Skipped = warnings(g1.key);
  const stormKeys = Array.from({ length: GARBAGE_KEYS }, (_, index) => `${p}junk-${index}`);
  const stormLines = stormKeys.reduce((sum, key) => sum + warnings(key), 0);
  const outsideSeen = outside.filter(([key]) => output.includes(JSON.stringify(key))).length;
  const deadListed = listed.some((instance) => instance.key === deadKey);
  const deadAdded = output.split('\n').filter((line) => line.includes(`+127.0.0.1:${deadPort} `)).length;
  const decoyCalls = load.byAddress[decoy.address] ?? 0;
  const deadCalls = load.byAddress[`127.0.0.1:${deadPort}`] ?? 0;
  const shares = greeters.map((greeter) => (load.byAddress[greeter.address] ?? 0) / Math.max(1, load.calls));
  const crashed = [...greeters.map((greeter) => greeter.proc), decoy.proc, client.proc].filter((proc) => !proc.alive).map((proc) => proc.name);
  const heapGrowth = after.heapUsed - before.heapUsed;
  const listedKeys = listed.map((instance) => instance.key).sort();
  const expectedKeys = [...greeters.map((greeter) => greeter.key), deadKey].sort();
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  s.keep('garbage', { skippedOnce, stormLines, before, after });
  return outcomeOf(load, {
    registrationsLost: greeters.filter((greeter) => !inEtcd.has(greeter.key)).length,
    details:
      `${set.length} garbage records + ${outside.length} outside the prefix + a dead-port record, written ${ms(Date.now() - writeAt)} before the end; ` +
      `warnings per garbage key: ${skippedOnce.map(({ count }) => count).join(',')}; a live greeter's own key reported as skipped ${g1Skipped} time(s); ` +
      `${GARBAGE_WRITES} writes over ${GARBAGE_KEYS} keys at ${Math.round(writesPerSec)}/s produced ${stormLines} warnings; ` +
      `client heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} (rss ${mib(before.rss)} -> ${mib(after.rss)}); ` +
      `calls to the decoy ${decoyCalls}, to the dead port ${deadCalls}; greeter shares ${shares.map((share) => `${(share * 100).toFixed(0)}%`).join(', ')}; ` +
      callsSummary(load),
    checks: [
      noFailedCalls(load),
      check(`no process crashed (${crashed.join(', ') || 'none'})`, crashed.length === 0),
      check(`no call routed to an address only garbage names (decoy ${decoyCalls}, dead port ${deadCalls})`, decoyCalls === 0 && deadCalls === 0),
      check(
        `a duplicate address does not double its share (greeter shares ${shares.map((share) => (share * 100).toFixed(0)).join('/')} %)`,
        shares.every((share) => share > 0.2 && share < 0.45),
      ),
      check(
        `the duplicate of greeter-1's address is the record skipped, not greeter-1's own (client lists ${listedKeys.map((key) => key.slice(p.length)).join(', ')}; greeter-1's key reported as skipped ${g1Skipped}x)`,
        JSON.stringify(listedKeys) === JSON.stringify(expectedKeys) && g1Skipped === 0,
      ),
      check(`the dead-port record is ejected by the balancer, logged once (${deadAdded} membership line)`, deadListed && deadAdded === 1),
      check(`each garbage record logged once (${notOnce.map(({ key, count }) => `${key.slice(p.length) || '<empty id>'}: ${count}`).join(', ') || 'all once'})`, notOnce.length === 0),
      check(`keys outside the prefix never seen (${outsideSeen})`, outsideSeen === 0),
      check(
        `${GARBAGE_WRITES} garbage writes to ${GARBAGE_KEYS} keys (one kind per key) logged at most once per key (${stormLines} warnings)`,
        stormLines <= GARBAGE_KEYS,
      ),
      check(`client heap stable after ${GARBAGE_WRITES} garbage writes (+${mib(heapGrowth)}, limit ${mib(HEAP_GROWTH_LIMIT)})`, heapGrowth < HEAP_GROWTH_LIMIT),
      check(`the client caught up with the writes (${ms(caughtUp && caughtUp - stormAt)})`, caughtUp !== undefined),
    ],
  });
}

/** Kind of garbage per key index; the content changes on every write. */
const GARBAGE_KINDS: Array<(n: number) => string | Buffer> = [
  (n) => randomBytes(100 + (n % 3_900)),
  (n) => JSON.stringify({ Addr: n, Metadata: { pad: randomBytes(n % 2_000).toString('hex') } }),
  (n) => JSON.stringify({ Addr: `127.0.0.1:${n}`, Metadata: [randomBytes(n % 1_000).toString('base64')] }),
  (n) => `{"Addr":"${randomBytes(n % 1_500).toString('base64')}`,
  (n) => JSON.stringify(randomBytes(n % 2_000).toString('hex')),
];

/** `count` single-key puts over GARBAGE_KEYS keys, 64 at a time, from a plain etcd3 client; returns writes per second. */
async function writeGarbage(s: Scenario, writer: Etcd3, count: number): Promise<number> {
  const started = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      const index = n % GARBAGE_KEYS;
      await writer.put(`${s.prefix}junk-${index}`).value(GARBAGE_KINDS[index % GARBAGE_KINDS.length](n));
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return count / ((Date.now() - started) / 1_000);
}

const run = promisify(execFile);

async function authRestart(s: Scenario) {
  const etcd = await s.etcd(['--auth-token', 'simple']);
  const ctl = (...args: string[]) => run('etcdctl', ['--endpoints', etcd.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  await ctl('user', 'add', 'root:root-pw');
  await ctl('user', 'grant-role', 'root', 'root').catch(() => undefined);
  await ctl('role', 'add', 'services');
  await ctl('role', 'grant-permission', 'services', '--prefix=true', 'readwrite', `${s.namespace}/`);
  await ctl('user', 'add', 'app:app-pw');
  await ctl('user', 'grant-role', 'app', 'services');
  await ctl('auth', 'enable');
  s.useAuth({ username: 'app', password: 'app-pw' });
  s.mark('auth enabled; apps use user "app", confined to the namespace');

  const greeters = await s.greeters(3);
  const client = await s.client({ env: { LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } });
  const sampler = s.sampler();
  await s.startLoad(client);

  const DOWN_MS = TTL_MS + 1_000;
  const relists = (): number => (client.proc.output().match(/resynced/g) ?? []).length;
  const relistsBefore = relists();
  const downAt = s.mark('stop etcd (every simple token is lost with it)');
  await etcd.stop();
  await sleepUntil(downAt + DOWN_MS);
  await etcd.restart();
  const healAt = s.mark('etcd healthy again');
  const relisted = timeWhen(() => relists() > relistsBefore, 10_000);
  const probe = await probeWatch(s, client, 'probe-after-restart');
  const relistedAt = await relisted;
  s.mark(
    `client listed again ${ms(relistedAt && relistedAt - healAt)} after the heal; probe written ${ms(probe.writtenAt - healAt)}, seen by the client ${ms(probe.seenAt && probe.seenAt - healAt)} after the heal`,
  );
  await s.view.delete(probe.key);
  await sleepUntil(healAt + 2 * TTL_MS + 1_500);
  const load = await client.stopLoad();
  await sampler.stop();

  const fates = fatesOf(sampler.samples, greeters, healAt);
  // The test's view may stay blind for seconds after the restart (a loaded machine, a stale token): the greeter's own
  // "registered (lease N)" line dates the registration when no sample after it missed the key.
  const perKey = fates.map((fate, index) => registeredAgainMs(fate, loggedRegistrations(s.fullOutput(greeters[index].proc), s.startedAt), healAt));
  const blindMs = (lastUnanswered(sampler.samples, healAt) ?? healAt) - healAt;
  const registeredMs = perKey.some((value) => value === undefined) ? undefined : Math.max(...(perKey as number[]));
  // Live again = listed again, and a record written after that reaches it. The test's own first write after the
  // restart may take a couple of seconds (its HTTP connection and token went stale): not the client's time.
  const relistMs = relistedAt === undefined ? undefined : relistedAt - healAt;
  const probeMs = probe.seenAt === undefined ? undefined : Math.max(0, probe.seenAt - probe.writtenAt);
  const watchMs = relistMs === undefined || probeMs === undefined ? undefined : Math.max(relistMs, probeMs);
  const recoveryMs = registeredMs === undefined || watchMs === undefined ? undefined : Math.max(registeredMs, watchMs);
  const lost = perKey.filter((value) => value === undefined || value > BOUND_MS).length;
  const alive = await Promise.all(fates.map((fate) => s.view.leaseTtl(fate.finalLease ?? '0').catch(() => -1)));
  return outcomeOf(load, {
    registrationsLost: lost,
    recoveryMs,
    details:
      `etcd down ${ms(healAt - downAt)}; ${startedBetween(load.records, downAt, healAt)} calls meanwhile, ${failedBetween(load.records, downAt, healAt)} failed; ` +
      `after the restart: instances registered (stable on a live lease) in ${perKey.map(ms).join(', ')} (remaining TTLs ${alive.join(', ')} s; the test's view answered again ${ms(blindMs)} after it), ` +
      `the client listed again ${ms(relistMs)} after it and a record written ${ms(probe.writtenAt - healAt)} after it reached the client ${ms(probeMs)} later; ${callsSummary(load)}`,
    checks: [
      noFailedCalls(load),
      check(`every instance registered again within ${BOUND_MS} ms, on a live lease (${perKey.map(ms).join(', ')}; TTLs ${alive.join(', ')})`, lost === 0 && alive.every((ttl) => ttl > 0)),
      check(`the client's watch live again within ${BOUND_MS} ms (${ms(watchMs)})`, watchMs !== undefined && watchMs <= BOUND_MS),
    ],
  });
}

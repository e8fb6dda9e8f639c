// 3. scale: 1,000 services x 10 instances = 10,000 registrations from 20 registrant processes, each using
// the library (an app context with EtcdDiscoveryModule, ONE lease per process: process p registers 500
// services, a window starting at service 50p, so each service is registered by 10 processes). Then one
// fresh client process discovers all 1,000 services through ClientFactory's instance-list Observables
// (no channels), and follows churn of 50 changes/s for 10 s.
// Baselines in the same run: the same reads/watches with a bare etcd3 client; churn seen by a bare watcher.
import { ROOT, round, sleep } from './lib/common.mjs';
import { etcdCounters, startBenchEtcd } from './lib/etcd.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';

const SERVICES = Number(process.env.BENCH_SCALE_SERVICES ?? 1_000);
const INSTANCES_PER_SERVICE = 10;
const PROCESSES = 20;
/** Each process registers this many services: SERVICES x INSTANCES_PER_SERVICE records over PROCESSES leases. */
const PER_PROCESS = (SERVICES * INSTANCES_PER_SERVICE) / PROCESSES;
const STRIDE = SERVICES / PROCESSES;
const CHURN_PER_SEC = 50;
const CHURN_MS = Number(process.env.BENCH_SCALE_CHURN_MS ?? 10_000);
const NAMESPACE = '/services';
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;
const CLIENT = `${ROOT}bench/children/discovery-client.mjs`;

await runBenchmark('scale', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());
  const services = Array.from({ length: SERVICES }, (_, k) => `svc-${String(k).padStart(3, '0')}`);

  const registrants = Array.from({ length: PROCESSES }, (_, p) => forkChild(`registrant-${p}`, REGISTRANT));
  // 20 node processes loading Nest, grpc-js and etcd3 at once take ~2 s of CPU each: on 2 busy cores, a while.
  await Promise.all(registrants.map(async (child) => {
    await child.waitFor((message) => message?.ready, 120_000, 'ready');
    await child.request('init', { hosts: [etcd.endpoint], namespace: NAMESPACE });
  }));
  const before = await etcdCounters(etcd);
  // Process p: services 50p .. 50p + 499 (mod 1,000); its ports are its own, so no two records of a service share an address.
  const windowOf = (p) => Array.from({ length: PER_PROCESS }, (_, j) => services[(p * STRIDE + j) % SERVICES]);
  const registered = await Promise.all(registrants.map((child, p) =>
    child.request('registerMany', { mode: 'shared', services: windowOf(p), portBase: 20_000 + p * PER_PROCESS }, 120_000)));
  const afterRegistration = await etcdCounters(etcd);
  const registrations = registered.reduce((sum, r) => sum + r.registrations, 0);
  console.log(`registered ${registrations} instances from ${PROCESSES} processes in ${round(Math.max(...registered.map((r) => r.ms)), 0)} ms`);
  // A registrant watches each of its own keys (to put it back if someone deletes it), started after its records
  // are in: wait for those watches, so the client's count below is the client's alone.
  const settleStartedAt = Date.now();
  let registrantsSettled = await etcdCounters(etcd);
  while (registrantsSettled.watchers - before.watchers < registrations && Date.now() - settleStartedAt < 60_000) {
    await sleep(200);
    registrantsSettled = await etcdCounters(etcd);
  }
  const registrantWatchersMs = Date.now() - settleStartedAt;

  const client = forkChild('discovery-client', CLIENT, { execArgv: ['--expose-gc'] });
  await client.waitFor((message) => message?.ready, 30_000, 'ready');
  const beforeClient = await etcdCounters(etcd);
  const { warm } = await client.request('init', { hosts: [etcd.endpoint], namespace: NAMESPACE });
  const cold = await client.request('discoverAll', { services, perService: INSTANCES_PER_SERVICE }, 60_000);
  const afterDiscovery = await etcdCounters(etcd);
  const raw = await client.request('rawListAll', { services });
  const churn = await client.request('churn', { services, ratePerSec: CHURN_PER_SEC, durationMs: CHURN_MS }, CHURN_MS + 30_000);
  const stats = await Promise.all(registrants.map((child) => child.request('stats')));
  const final = await etcdCounters(etcd);

  const leasesGranted = stats.reduce((sum, s) => sum + s.leasesGranted, 0);
  const headline = {
    instances: cold.instances,
    services: cold.services,
    coldDiscoverAllMs: round(cold.coldDiscoverAllMs, 1),
    heapBytesPerInstance: round(cold.heapBytesPerInstance, 0),
    leasesGranted,
    registrantProcesses: PROCESSES,
    churnLagP99Ms: churn.lag.p99,
    watchersUpstream: afterDiscovery.watchers - beforeClient.watchers,
  };
  const extra = {
    rawListAllMs: round(raw.rawListAllMs, 1),
    coldVsRawRatio: round(cold.coldDiscoverAllMs / raw.rawListAllMs, 3),
    churnLagP50Ms: churn.lag.p50,
    rawChurnLagP50Ms: churn.rawLag.p50,
    rawChurnLagP99Ms: churn.rawLag.p99,
    churnChanges: churn.changes,
    churnMissed: churn.missed,
    churnRawMissed: churn.rawMissed,
    heapGrowthBytes: cold.heapGrowth,
    warmUpDiscoveryMs: round(warm.ms, 1),
    warmUpHeapGrowthBytes: warm.heapGrowth,
    etcdLeasesGranted: afterRegistration.leasesGranted - before.leasesGranted,
    etcdWatchers: final.watchers,
    registrantWatchers: registrantsSettled.watchers - before.watchers,
    registrantWatchersSettledMs: registrantWatchersMs,
    registrationMsMax: round(Math.max(...registered.map((r) => r.ms)), 0),
    perServiceHeapBytes: round(cold.heapGrowth / cold.services, 0),
    registrationRequests: afterRegistration.requests - before.requests,
  };

  printTable(`scale: ${SERVICES} services x ${INSTANCES_PER_SERVICE} instances from ${PROCESSES} processes`, {
    'cold discovery of every service (ms)': { discovered: cold.coldDiscoverAllMs, 'bare etcd3 baseline': raw.rawListAllMs },
  });
  printTable('scale: churn lag, write -> seen (ms)', { 'ClientFactory list': churn.lag, 'bare etcd3 watcher': churn.rawLag, 'list minus bare watcher': churn.lagMinusRaw });
  printTable('scale: figures', { ...headline, ...extra });

  writeResult('scale', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal('coldDiscoverAllMs <= 1000', headline.coldDiscoverAllMs, '<=', 1000),
      goal('heapBytesPerInstance <= 1024', headline.heapBytesPerInstance, '<=', 1024),
      goal('churnLagP99Ms <= 20', headline.churnLagP99Ms, '<=', 20),
      goal('leasesGranted == registrantProcesses', leasesGranted, '==', PROCESSES),
      goal('every churn change seen', churn.missed, '==', 0),
    ],
    notes: [
      `Process p registers ${PER_PROCESS} services (a window starting at service ${STRIDE}p, wrapping), one record each, under one lease per process: every service has ${INSTANCES_PER_SERVICE} records from ${INSTANCES_PER_SERVICE} processes.`,
      `heapBytesPerInstance: (heapUsed after GC once all ${SERVICES} services list their instances) minus (heapUsed after GC before the first of them was followed), divided by the instances listed. Everything the client holds for those services counts: per-service state (watch and list state, subscribers, telemetry) as well as per-instance records, instances, decoded metadata and maps. The baseline is taken after the etcd connection and the code paths were warmed by following ${warm.services} other services x 10 instances, as many as a client following many services has, so the client already follows through its one namespace watch (their one-time JIT/IC cost is warmUpHeapGrowthBytes; their state stays followed and is in both figures).`,
      `coldDiscoverAllMs: subscribe to all ${SERVICES} services at once (never listed before in this process) -> the last one lists its ${INSTANCES_PER_SERVICE} instances.`,
      'watchersUpstream: etcd_debugging_mvcc_watcher_total once the client follows every service, minus its value before the client process started (after every registrant had opened its watches): the watchers the client holds in etcd for all it follows.',
      `Churn: ${CHURN_PER_SEC}/s for ${CHURN_MS / 1000} s over all services: adds (new key, library record format) until 50 churn instances exist, then add and removal of the oldest in turn; written from a second etcd3 connection of the client process; lag = write -> the service's list emitted with the change.`,
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      ...extra,
      registration: { perProcessMs: registered.map((r) => round(r.ms, 0)), sample: registered[0].sample, keyBytes: registered[0].keyBytes / registered[0].registrations, valueBytes: registered[0].valueBytes / registered[0].registrations },
      cold,
      churn: { lag: churn.lag, rawLag: churn.rawLag, lagMinusRaw: churn.lagMinusRaw, wroteAllMs: churn.wroteAllMs, samples: churn.samples },
    },
  });
});

// 3. scale: 100 services x 10 instances = 1,000 registrations from 10 registrant processes, each using the
// library (an app context with EtcdDiscoveryModule, ONE lease per process: process p registers
// instance p of every service). Then one fresh client process discovers all 100 services through
// ClientFactory's instance-list Observables (no channels), and follows churn of 50 changes/s for 10 s.
// Baselines in the same run: the same reads/watches with a bare etcd3 client; churn seen by a bare watcher.
import { ROOT, round } from './lib/common.mjs';
import { etcdCounters, startBenchEtcd } from './lib/etcd.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';

const SERVICES = 100;
const INSTANCES_PER_SERVICE = 10;
const PROCESSES = 10;
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
  await Promise.all(registrants.map(async (child) => {
    await child.waitFor((message) => message?.ready, 30_000, 'ready');
    await child.request('init', { hosts: [etcd.endpoint], namespace: NAMESPACE });
  }));
  const before = await etcdCounters(etcd);
  const registered = await Promise.all(registrants.map((child, p) =>
    child.request('registerMany', { mode: 'shared', services, portBase: 20_000 + p * SERVICES }, 60_000)));
  const afterRegistration = await etcdCounters(etcd);
  const registrations = registered.reduce((sum, r) => sum + r.registrations, 0);
  console.log(`registered ${registrations} instances from ${PROCESSES} processes in ${round(Math.max(...registered.map((r) => r.ms)), 0)} ms`);

  const client = forkChild('discovery-client', CLIENT, { execArgv: ['--expose-gc'] });
  await client.waitFor((message) => message?.ready, 30_000, 'ready');
  const { warm } = await client.request('init', { hosts: [etcd.endpoint], namespace: NAMESPACE });
  const cold = await client.request('discoverAll', { services, perService: INSTANCES_PER_SERVICE }, 60_000);
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
      goal('coldDiscoverAllMs <= 500', headline.coldDiscoverAllMs, '<=', 500),
      goal('heapBytesPerInstance <= 2048', headline.heapBytesPerInstance, '<=', 2048),
      goal('leasesGranted == registrantProcesses', leasesGranted, '==', PROCESSES),
      goal('every churn change seen', churn.missed, '==', 0),
    ],
    notes: [
      `Process p registers instance p of every service: ${SERVICES} records under one lease per process.`,
      'heapBytesPerInstance: heapUsed after GC once all 100 services are listed, minus the baseline, divided by the instances. Baseline: after the etcd connection and the code paths were warmed by following 10 other services x 10 instances (their one-time JIT/IC cost is warmUpHeapGrowthBytes).',
      'coldDiscoverAllMs: subscribe to all 100 services at once (never listed before in this process) -> the last one lists its 10 instances.',
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

// 4. registration: what N registered processes cost etcd. 10 registrant processes, each registering 10
// instances (one of each of 10 services); once through the library (ONE lease per process), once with one
// lease per instance written with plain etcd3 (as go-zero's publisher and OpenIM register: a lease, a put
// and a keepalive stream per key). Alternating rounds; etcd's own counters (/metrics) and CPU.
import { rotate } from './lib/ab.mjs';
import { ROOT, median, round, sleep } from './lib/common.mjs';
import { etcdCounters, startBenchEtcd } from './lib/etcd.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';

const PROCESSES = 10;
const PER_PROCESS = 10;
/** The library's default TTL; keepalives go out every TTL/3, so a window of one TTL holds exactly three per lease. */
const TTL_SECONDS = 10;
const WINDOW_MS = TTL_SECONDS * 1_000;
const SETTLE_MS = 500;
const IDLE_MS = 3_000;
const GROUPS = Number(process.env.BENCH_REGISTRATION_GROUPS ?? 2);
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;

const delta = (a, b) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k] - a[k]]));

await runBenchmark('registration', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());
  const services = Array.from({ length: PER_PROCESS }, (_, k) => `svc-${k}`);
  const registrants = Array.from({ length: PROCESSES }, (_, p) => forkChild(`registrant-${p}`, REGISTRANT));
  await Promise.all(registrants.map(async (child) => {
    await child.waitFor((message) => message?.ready, 30_000, 'ready');
    await child.request('init', { hosts: [etcd.endpoint], ttlSeconds: TTL_SECONDS });
  }));

  // etcd with these processes connected but nothing registered: what the rounds add to.
  const idle0 = await etcdCounters(etcd);
  await sleep(IDLE_MS);
  const idleDelta = delta(idle0, await etcdCounters(etcd));
  const idle = {
    etcdCpuMsPerSec: round(idleDelta.cpuMs / (idleDelta.at / 1000), 2),
    etcdBytesInPerSecPerProcess: round(idleDelta.receivedBytes / (idleDelta.at / 1000) / PROCESSES, 1),
    keepAlivesPerSecPerProcess: round(idleDelta.keepAliveRequests / (idleDelta.at / 1000) / PROCESSES, 3),
  };

  const registrations = PROCESSES * PER_PROCESS;
  const round1 = async (mode) => {
    const c0 = await etcdCounters(etcd);
    const results = await Promise.all(registrants.map((child, p) =>
      child.request('registerMany', { mode, services, portBase: 20_000 + p * PER_PROCESS }, 60_000)));
    const c1 = await etcdCounters(etcd);
    await sleep(SETTLE_MS);
    const c2 = await etcdCounters(etcd);
    await sleep(WINDOW_MS);
    const c3 = await etcdCounters(etcd);
    await Promise.all(registrants.map((child) => child.request('deregisterAll', {}, 30_000)));
    const c4 = await etcdCounters(etcd);
    const register = delta(c0, c1);
    const steady = delta(c2, c3);
    const seconds = steady.at / 1000;
    const leases = results.reduce((sum, r) => sum + r.leasesGranted, 0);
    const row = {
      mode,
      leasesHeld: leases,
      keepAlivesPerSecPerProcess: round(steady.keepAliveRequests / seconds / PROCESSES, 3),
      keepAliveStreams: delta(c0, c3).keepAliveStreams,
      renewalsPerSec: round(steady.leaseRenewals / seconds, 2),
      etcdBytesInPerSecPerProcess: round(steady.receivedBytes / seconds / PROCESSES, 1),
      etcdBytesOutPerSecPerProcess: round(steady.sentBytes / seconds / PROCESSES, 1),
      etcdCpuMsPerSec: round(steady.cpuMs / seconds, 2),
      requestsPerRegistration: round(register.requests / registrations, 2),
      bytesInPerRegistration: round(register.receivedBytes / registrations, 0),
      requestsPerDeregistration: round(delta(c3, c4).requests / registrations, 2),
      recordBytes: round((results[0].keyBytes + results[0].valueBytes) / results[0].registrations, 0),
      registerMs: round(Math.max(...results.map((r) => r.ms)), 0),
      windowSec: round(seconds, 2),
    };
    await sleep(300);
    return row;
  };

  const groups = await rotate(GROUPS, { shared: 'shared', perInstance: 'per-instance' }, (name) => round1(name === 'shared' ? 'shared' : 'per-instance'),
    (i, group) => console.log(`group ${i + 1}/${GROUPS}: keepalives/s/process shared ${group.shared.keepAlivesPerSecPerProcess}, per-instance ${group.perInstance.keepAlivesPerSecPerProcess}`));
  const rows = groups.flatMap((g) => g.order.map((name) => ({ round: `${g.order.indexOf(name) + 1}`, ...g[name] })));
  printTable(`registration: ${PROCESSES} processes x ${PER_PROCESS} instances, TTL ${TTL_SECONDS} s, ${WINDOW_MS / 1000} s windows`, rows.map(({ windowSec, ...r }) => r));

  const med = (name, field) => round(median(groups.map((g) => g[name][field])), 3);
  const fields = ['leasesHeld', 'keepAlivesPerSecPerProcess', 'keepAliveStreams', 'etcdBytesInPerSecPerProcess', 'etcdBytesOutPerSecPerProcess', 'etcdCpuMsPerSec', 'requestsPerRegistration', 'bytesInPerRegistration', 'requestsPerDeregistration', 'recordBytes'];
  const summary = Object.fromEntries(['shared', 'perInstance'].map((name) => [name, Object.fromEntries(fields.map((f) => [f, med(name, f)]))]));
  const ratio = (field) => round(summary.perInstance[field] / summary.shared[field], 2);
  printTable('registration: medians (shared = the library, one lease per process; perInstance = one lease per instance; idle = nothing registered)', { ...summary, idle });

  const headline = {
    processes: PROCESSES,
    instancesPerProcess: PER_PROCESS,
    ttlSeconds: TTL_SECONDS,
    keepAlivesPerSecPerProcess: summary.shared.keepAlivesPerSecPerProcess,
    keepAlivesPerSecPerProcessPerInstanceLease: summary.perInstance.keepAlivesPerSecPerProcess,
    keepAliveRatioPerInstanceVsShared: ratio('keepAlivesPerSecPerProcess'),
    leasesShared: summary.shared.leasesHeld,
    leasesPerInstance: summary.perInstance.leasesHeld,
    recordBytes: summary.shared.recordBytes,
    bytesInPerRegistration: summary.shared.bytesInPerRegistration,
    bytesInPerRegistrationPerInstanceLease: summary.perInstance.bytesInPerRegistration,
    etcdBytesInPerSecPerProcess: summary.shared.etcdBytesInPerSecPerProcess,
    etcdBytesInPerSecPerProcessPerInstanceLease: summary.perInstance.etcdBytesInPerSecPerProcess,
  };
  writeResult('registration', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal('one lease per process (leases held == processes)', summary.shared.leasesHeld, '==', PROCESSES),
      goal('keepalives/s per process independent of its instances (== 3 / TTL)', summary.shared.keepAlivesPerSecPerProcess, '<=', round((3 / TTL_SECONDS) * 1.1, 3)),
    ],
    notes: [
      `Keepalives: etcd's grpc_server_msg_received_total{grpc_method="LeaseKeepAlive"} over a window of one TTL (etcd3 renews every TTL/3), after a ${SETTLE_MS} ms settle.`,
      'recordBytes: key + value of one registration as stored; bytesInPerRegistration: bytes etcd received while registering per registration: the library\'s grant, own-key list and watch, create-only txn; the baseline\'s grant and put.',
      `etcdCpuMsPerSec: etcd CPU time from /proc (10 ms ticks) during the window: coarse; with the processes connected and nothing registered it was ${idle.etcdCpuMsPerSec} ms/s.`,
    ],
    details: { loadAvgAtStart: ctx.loadAvgAtStart, windowMs: WINDOW_MS, groups: GROUPS, summary, idle, rounds: rows },
  });
});

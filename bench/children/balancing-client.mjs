// The calling process of the balancing benchmark, driven over IPC: a client-only Nest application context with
// EtcdDiscoveryModule (imported by package name), one ClientFactory, Greeter clients on etcd:///greeter with
// round robin and with p2c_ewma (and p2c_ewma over the fast instances only). The servers run in processes of their own.
//   init { hosts, instances }                       discovery context; waits until `instances` are listed
//   closedLoop { policy, concurrency, durationMs }  back-to-back calls (the capacity ramp)
//   openLoop { policy, ratePerSec, calls, seed, slowAddress }   Poisson arrivals, latency from the scheduled start
import * as hdr from 'hdr-histogram-js';
import { filter, firstValueFrom } from 'rxjs';
import { withTimeout } from '../lib/common.mjs';
import { closedLoop, createDiscoveryContext, discoveredGreeter, sayHello } from '../lib/client.mjs';
import { percentileMs } from '../lib/hdr.mjs';
import { openLoop, poissonSchedule } from '../lib/open-loop.mjs';
import { serveIpc } from '../lib/processes.mjs';

/**
 * The clients, by name. `twoFast` is p2c_ewma restricted (by `select`) to the instances registered as not
 * delayed: what a policy that never picks the slow instance gets at the same rate, the bound for p2c.
 */
const CLIENTS = {
  roundRobin: { loadBalancing: 'round_robin' },
  p2c: { loadBalancing: 'p2c_ewma' },
  twoFast: { loadBalancing: 'p2c_ewma', select: { metadata: { delayed: false } } },
};
/** p2c_ewma picks an endpoint anyway once it has not been picked for this long (endpoint-stats.ts FORCE_PICK_MS). */
const FORCE_PICK_MS = 1_000;

let app;
const services = {};

/**
 * Who was busy when each call to `slowAddress` went out, rebuilt from the calls' send and end times: calls in
 * flight on the slow server and on each other server at that instant (what p2c's in-flight counts saw), and
 * the time since the slow server's previous call (>= FORCE_PICK_MS: a forced pick, not a load comparison).
 */
function slowPickAnalysis(records, slowAddress) {
  const events = [];
  for (const record of records) {
    if (!record?.server) continue;
    events.push({ at: record.sentAt, delta: 1, server: record.server });
    events.push({ at: record.endedAt, delta: -1, server: record.server });
  }
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  const inFlight = new Map();
  const picks = [];
  let lastSlowAt = -Infinity;
  for (const event of events) {
    if (event.delta === 1 && event.server === slowAddress) {
      const others = [...inFlight].filter(([server]) => server !== slowAddress).map(([, n]) => n);
      picks.push({ slow: inFlight.get(slowAddress) ?? 0, leastOther: others.length > 0 ? Math.min(...others) : 0, gapMs: event.at - lastSlowAt });
      lastSlowAt = event.at;
    }
    inFlight.set(event.server, (inFlight.get(event.server) ?? 0) + event.delta);
  }
  const count = (predicate) => picks.filter(predicate).length;
  const byLeastOther = {};
  for (const pick of picks) {
    const key = pick.leastOther >= 8 ? '8+' : String(pick.leastOther);
    byLeastOther[key] = (byLeastOther[key] ?? 0) + 1;
  }
  return {
    picks: picks.length,
    forcedLike: count((pick) => pick.gapMs >= FORCE_PICK_MS),
    whileSlowBusy: count((pick) => pick.slow > 0),
    meanSlowInFlight: picks.length > 0 ? picks.reduce((sum, pick) => sum + pick.slow, 0) / picks.length : 0,
    /** Slow picks by the in-flight calls on the least busy other server at that instant. */
    byLeastOtherInFlight: byLeastOther,
  };
}

/** Mean time from send to reply, per serving address (the client's view of each server). */
function meanByServer(records) {
  const sums = new Map();
  for (const record of records) {
    if (!record?.server) continue;
    const [sum, n] = sums.get(record.server) ?? [0, 0];
    sums.set(record.server, [sum + record.endedAt - record.sentAt, n + 1]);
  }
  return Object.fromEntries([...sums].map(([server, [sum, n]]) => [server, { calls: n, meanMs: Math.round((sum / n) * 1000) / 1000 }]));
}

const handlers = {
  async init({ hosts, instances }) {
    let factory;
    ({ app, factory } = await createDiscoveryContext({ hosts }));
    await withTimeout(firstValueFrom(factory.instances('greeter').pipe(filter((list) => list.length === instances))), 15_000, `${instances} greeters listed`);
    for (const [name, options] of Object.entries(CLIENTS)) services[name] = await discoveredGreeter(factory, options);
    return { pid: process.pid };
  },

  async closedLoop({ policy, concurrency, durationMs }) {
    const run = await closedLoop({ concurrency, durationMs, call: () => sayHello(services[policy]) });
    return {
      throughput: run.throughput,
      completed: run.completed,
      failed: run.failed,
      p50: percentileMs(run.histogram, 50),
      p99: percentileMs(run.histogram, 99),
      cpuUsPerCall: run.cpuUsPerCall,
      cpuShare: (run.cpuUsPerCall * run.completed) / 1000 / run.elapsedMs,
    };
  },

  async openLoop({ policy, ratePerSec, calls, seed, slowAddress }) {
    const schedule = poissonSchedule({ ratePerSec, calls, seed });
    const run = await openLoop({ schedule, call: () => sayHello(services[policy]) });
    const servedBy = {};
    for (const record of run.records) if (record?.server) servedBy[record.server] = (servedBy[record.server] ?? 0) + 1;
    return {
      histogram: hdr.encodeIntoCompressedBase64(run.histogram),
      servedBy,
      byServer: meanByServer(run.records),
      slowPicks: slowPickAnalysis(run.records, slowAddress),
      failed: run.failed,
      firstError: run.firstError,
      elapsedMs: run.elapsedMs,
      offeredPerSec: run.offeredPerSec,
      generator: run.generator,
    };
  },
};

serveIpc(handlers, async () => {
  await app?.close();
}).send({ ready: true, pid: process.pid });

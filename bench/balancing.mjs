// 5. balancing (issues 4 and 12): round robin vs p2c_ewma with one slow instance, under open-loop load.
// Three Greeter servers, each in its own process and registered in etcd through the package; each serves
// one call at a time taking SERVICE_MS (capacity 1000 / SERVICE_MS calls/s each), one answers SLOW_MS later
// (without serving fewer calls per second). A client process (ClientFactory, etcd:///greeter) first finds the
// capacity of the all-fast pool, then starts Poisson arrivals at 30 %, 60 % and 90 % of it and times every call
// from its scheduled start. Per point, per policy >= 20,000 calls in rounds whose order rotates:
// round robin and p2c_ewma on the pool with the slow server, round robin on the all-fast pool (the same three
// servers, the slow one's delay switched off: the limit any policy can reach), and at 60 % p2c_ewma over the
// two fast servers alone (a quarter of the calls: what never picking the slow one gets, the bound for p2c here).
import { cpus } from 'node:os';
import * as hdr from 'hdr-histogram-js';
import { rotate } from './lib/ab.mjs';
import { ROOT, round, sleep } from './lib/common.mjs';
import { startBenchEtcd } from './lib/etcd.mjs';
import { merged, summarize } from './lib/hdr.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';

/**
 * Service time of every server's single worker: ~833 calls/s per server, 2,500/s for the pool. Short beside the
 * slow server's 20 ms. Not longer, for the time budget (bench/run.mjs stops a benchmark after 180 s): three points
 * x three policies x 20,000 calls take 20,000 x 3 x (1/0.3 + 1/0.6 + 1/0.9) / capacity = 147 s at 2,500/s. Not
 * shorter, for the client: grpc-js costs it 0.25-0.35 ms of CPU per call on this 2-core machine, so 90 %
 * (2,250 calls/s) takes well over half a core. Each round reports the client's CPU share and how late calls left.
 */
const SERVICE_MS = 1.2;
const SLOW_MS = 20;
const CALLS_PER_POINT = Number(process.env.BENCH_BALANCING_CALLS ?? 20_000);
const LOADS = (process.env.BENCH_BALANCING_LOADS ?? '0.3,0.6,0.9').split(',').map(Number);
const HEADLINE_LOAD = 0.6;
/** Rounds per point: each variant once per round, the order rotating (A,B,C / B,C,A / C,A,B). */
const GROUPS = 3;
const ROUND_CALLS = Math.ceil(CALLS_PER_POINT / GROUPS);
/**
 * The capacity ramp: closed-loop round robin at each concurrency for RAMP_STEP_MS. The last steps queue ~10 and
 * ~21 calls per server, far past saturation, so the ramp always reaches the plateau; capacity = its highest
 * throughput. (A stop rule on "throughput stopped growing" fires early on a busy machine, where throughput dips.)
 */
const RAMP = [1, 2, 4, 8, 16, 32, 64];
const RAMP_STEP_MS = 800;
/** The knee: the smallest concurrency of the ramp within KNEE_SHARE of the capacity. */
const KNEE_SHARE = 0.95;
/** p2c over the two fast servers alone is a reference, not a policy under test: a quarter of the calls. */
const TWO_FAST_SHARE = 0.25;
const WARMUP_MS = 500;

await runBenchmark('balancing', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());
  const hosts = [etcd.endpoint];

  // BENCH_BALANCING_CLIENT_NODE_ARGS / BENCH_BALANCING_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"): to profile.
  const nodeArgs = (name) => process.env[name]?.split(' ').filter(Boolean) ?? [];
  const servers = [0, 1, 2].map((i) => forkChild(`balancing-server-${i + 1}`, `${ROOT}bench/children/balancing-server.mjs`, { execArgv: nodeArgs('BENCH_BALANCING_SERVER_NODE_ARGS') }));
  ctx.defer(() => Promise.all(servers.map((server) => server.stop(5_000))));
  await Promise.all(servers.map((server) => server.waitFor((m) => m?.ready, 15_000, 'ready')));
  const addresses = await Promise.all(servers.map(async (server, i) => {
    const slow = i === 2;
    return (await server.request('init', { hosts, serviceMs: SERVICE_MS, extraDelayMs: slow ? SLOW_MS : 0, metadata: { delayed: slow } })).address;
  }));
  const [slowServer, slowAddress] = [servers[2], addresses[2]];

  const client = forkChild('balancing-client', `${ROOT}bench/children/balancing-client.mjs`, { execArgv: nodeArgs('BENCH_BALANCING_CLIENT_NODE_ARGS') });
  ctx.defer(() => client.stop(5_000));
  await client.waitFor((m) => m?.ready, 15_000, 'ready');
  await client.request('init', { hosts, instances: 3 });
  const setSlow = (on) => slowServer.request('setExtraDelay', { ms: on ? SLOW_MS : 0 });

  // Warm-up: connections, JIT, p2c's first statistics.
  for (const policy of ['roundRobin', 'p2c', 'twoFast']) await client.request('closedLoop', { policy, concurrency: 8, durationMs: WARMUP_MS });

  // Capacity of the all-fast pool: the most calls per second it completes in closed loop, however many are queued.
  await setSlow(false);
  const ramp = [];
  for (const concurrency of RAMP) {
    const step = await client.request('closedLoop', { policy: 'roundRobin', concurrency, durationMs: RAMP_STEP_MS });
    ramp.push({ concurrency, perSec: round(step.throughput, 0), p50: round(step.p50, 3), p99: round(step.p99, 3), clientCpuShare: round(step.cpuShare, 3), failed: step.failed });
  }
  await setSlow(true);
  const capacity = Math.max(...ramp.map((s) => s.perSec));
  const kneeConcurrency = ramp.find((s) => s.perSec >= KNEE_SHARE * capacity).concurrency;
  const nominalCapacity = (3 * 1000) / SERVICE_MS;
  printTable(`balancing: capacity ramp, all-fast pool, round robin, closed loop, ${RAMP_STEP_MS} ms per step`, ramp);
  console.log(`capacity ${capacity} calls/s (nominal ${nominalCapacity}), ${KNEE_SHARE * 100} % of it from concurrency ${kneeConcurrency}`);

  const points = [];
  for (const [p, load] of LOADS.entries()) {
    const ratePerSec = round(load * capacity, 0);
    const variants = { roundRobin: 'roundRobin', p2c: 'p2c', allFast: 'roundRobin', ...(load === HEADLINE_LOAD ? { twoFast: 'twoFast' } : {}) };
    const runRound = async (name, group) => {
      if (name === 'allFast') await setSlow(false);
      try {
        // The same arrival times for every variant of a round (common random numbers).
        const calls = name === 'twoFast' ? Math.ceil(ROUND_CALLS * TWO_FAST_SHARE) : ROUND_CALLS;
        return await client.request('openLoop', { policy: variants[name], ratePerSec, calls, seed: 1_000 * (p + 1) + group, slowAddress }, 120_000);
      } finally {
        if (name === 'allFast') await setSlow(true);
        await sleep(50);
      }
    };
    const groups = await rotate(GROUPS, variants, runRound, (i, group, order) =>
      console.log(`${Math.round(load * 100)} % (${ratePerSec}/s) round ${i + 1}/${GROUPS} [${order.join(',')}]: p99 ${order.map((n) => `${n} ${percentileOf(group[n], 99)}`).join(', ')} ms`));
    points.push({ load, ratePerSec, ...summarizePoint(groups, Object.keys(variants), slowAddress) });
    printTable(`balancing: ${Math.round(load * 100)} % of capacity, ${ratePerSec} calls/s offered (Poisson), latency from scheduled start (ms)`,
      Object.fromEntries(Object.entries(points.at(-1).policies).map(([name, v]) => [name, {
        calls: v.count, p50: v.p50, p90: v.p90, p99: v.p99, p999: v.p999, max: v.max, slowShare: v.slowShare, failed: v.failed,
        clientCpu: v.generator.cpuShareMax, dispatchLateP99: v.generator.dispatchLateP99Ms,
      }])));
  }

  const serverStats = await Promise.all(servers.map((server) => server.request('stats')));
  const at = points.find((point) => point.load === HEADLINE_LOAD) ?? points[Math.floor(points.length / 2)];
  const low = points[0];
  const pol = at.policies;
  const failed = points.reduce((sum, point) => sum + Object.values(point.policies).reduce((s, v) => s + v.failed, 0), 0);
  const generatorWorst = worstGenerator(points);
  const headline = {
    rrP99Ms: pol.roundRobin.p99,
    p2cP99Ms: pol.p2c.p99,
    allFastP99Ms: pol.allFast.p99,
    p99Ratio: round(pol.p2c.p99 / pol.roundRobin.p99, 4),
    p99OverAllFast: round(pol.p2c.p99 / pol.allFast.p99, 4),
    slowShareP2c: pol.p2c.slowShare,
    slowShareRR: pol.roundRobin.slowShare,
    callsPerPolicy: pol.p2c.count + pol.p2c.failed,
    failedCalls: failed,
    rrP50Ms: pol.roundRobin.p50,
    p2cP50Ms: pol.p2c.p50,
    twoFastP99Ms: pol.twoFast?.p99,
    capacityPerSec: capacity,
    ratePerSec: at.ratePerSec,
    pacedP99Ratio: round(low.policies.p2c.p99 / low.policies.roundRobin.p99, 4),
    pacedSlowShareP2c: low.policies.p2c.slowShare,
    clientCpuShareMax: generatorWorst.cpuShareMax,
    clientDispatchLateP99Ms: generatorWorst.dispatchLateP99Ms,
  };
  const pct = (x) => `${round(x * 100, 2)} %`;
  const sp = pol.p2c.slowPicks;
  const notes = [
    `Capacity: closed-loop round robin on the all-fast pool at concurrency ${RAMP.join(', ')} (${RAMP_STEP_MS} ms each); capacity = the highest throughput of the ramp, ${capacity} calls/s, ` +
      `${KNEE_SHARE * 100} % of it reached from concurrency ${kneeConcurrency} (nominal ${nominalCapacity}: 3 servers x 1000 / ${SERVICE_MS} ms)` +
      (capacity < 0.9 * nominalCapacity ? `: below nominal, so the machine's CPU (client and servers share ${cpus().length} cores), not the servers' service time, set the capacity in this run.` : '.'),
    `At ${Math.round(at.load * 100)} % (${at.ratePerSec} calls/s) p2c sent ${pct(pol.p2c.slowShare)} of calls to the slow server (round robin ${pct(pol.roundRobin.slowShare)}); ` +
      `of its ${sp.picks} slow picks ${sp.forcedLike} came >= 1 s after the previous one (FORCE_PICK_MS), ${sp.whileSlowBusy} while the slow server already had a call in flight; ` +
      `slow picks by in-flight calls on the less busy fast server at that instant: ${JSON.stringify(sp.byLeastOtherInFlight)}.`,
    ...(pol.twoFast ? [`A policy that never picks the slow server leaves the two fast ones at ${round((at.ratePerSec * SERVICE_MS) / 2000, 2)} utilisation: p2c over those two alone had p99 ${pol.twoFast.p99} ms, ` +
      `i.e. p99Ratio ${round(pol.twoFast.p99 / pol.roundRobin.p99, 2)} and p99OverAllFast ${round(pol.twoFast.p99 / pol.allFast.p99, 2)} for perfect avoidance; any policy that sends the slow server more than ~1 % of calls has its ${SLOW_MS} ms in the p99.`] : []),
    `Load generator (the client process): CPU at most ${pct(generatorWorst.cpuShareMax)} of one core in any round, calls dispatched at most ${generatorWorst.dispatchLateP99Ms} ms after their slot (p99, worst round), event-loop delay p99 at most ${generatorWorst.loopDelayP99Ms} ms.`,
    `Servers: reply timers fired on average ${serverStats.map((s) => round(s.meanReplyLateMs, 2)).join(' / ')} ms late (their own scheduling delay, part of every latency above); CPU ${serverStats.map((s) => round(s.cpuMs / 1000, 1)).join(' / ')} s over the run.`,
    'Each server runs in its own process, registered in etcd through the package; the client is another process (instance list from etcd, one ClientFactory). The all-fast pool is the same three processes with the slow one\'s delay switched off.',
    `failedCalls counts every open-loop call of the run (every point and variant); pacedP99Ratio and pacedSlowShareP2c are now the ${Math.round(low.load * 100)} % point's (the lowest open-loop load), throughputRatio is gone (open loop: every policy serves the offered rate).`,
  ];
  writeResult('balancing', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal('p99Ratio (p2c / round robin) at 60 % <= 0.25', headline.p99Ratio, '<=', 0.25),
      goal('p99OverAllFast (p2c / all-fast pool) at 60 % <= 1.25', headline.p99OverAllFast, '<=', 1.25),
      goal('slowShareP2c at 60 % < 0.05', headline.slowShareP2c, '<', 0.05),
      goal('no call failed', failed, '==', 0),
    ],
    notes,
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      serviceMs: SERVICE_MS, slowMs: SLOW_MS, callsPerPoint: ROUND_CALLS * GROUPS, groups: GROUPS,
      capacity: { perSec: capacity, nominalPerSec: nominalCapacity, kneeConcurrency, rampStepMs: RAMP_STEP_MS, ramp },
      points,
      servers: serverStats.map(({ address, calls, meanQueuedMs, meanReplyLateMs, cpuMs }, i) => ({ address, calls, meanQueuedMs: round(meanQueuedMs, 3), meanReplyLateMs: round(meanReplyLateMs, 3), cpuMs: round(cpuMs, 0), slow: i === 2 })),
      slowAddress,
    },
  });
});

function percentileOf(roundResult, percentile) {
  return round(hdr.decodeFromCompressedBase64(roundResult.histogram).getValueAtPercentile(percentile) / 1000, 3);
}

/** One point's rounds pooled per variant: latency, who served, slow picks, failures, the generator's health. */
function summarizePoint(groups, names, slowAddress) {
  const policies = {};
  for (const name of names) {
    const rounds = groups.map((g) => g[name]);
    const servedBy = {};
    for (const r of rounds) for (const [address, n] of Object.entries(r.servedBy)) servedBy[address] = (servedBy[address] ?? 0) + n;
    const total = Object.values(servedBy).reduce((a, b) => a + b, 0);
    const meanMsByServer = {};
    for (const address of Object.keys(servedBy)) {
      const parts = rounds.map((r) => r.byServer[address]).filter(Boolean);
      meanMsByServer[address] = round(parts.reduce((s, x) => s + x.meanMs * x.calls, 0) / parts.reduce((s, x) => s + x.calls, 0), 3);
    }
    const slowPicks = { picks: 0, forcedLike: 0, whileSlowBusy: 0, byLeastOtherInFlight: {} };
    for (const r of rounds) {
      slowPicks.picks += r.slowPicks.picks;
      slowPicks.forcedLike += r.slowPicks.forcedLike;
      slowPicks.whileSlowBusy += r.slowPicks.whileSlowBusy;
      for (const [k, n] of Object.entries(r.slowPicks.byLeastOtherInFlight)) slowPicks.byLeastOtherInFlight[k] = (slowPicks.byLeastOtherInFlight[k] ?? 0) + n;
    }
    policies[name] = {
      ...summarize(merged(rounds.map((r) => hdr.decodeFromCompressedBase64(r.histogram)))),
      slowShare: round((servedBy[slowAddress] ?? 0) / Math.max(1, total), 4),
      failed: rounds.reduce((s, r) => s + r.failed, 0),
      firstError: rounds.find((r) => r.firstError)?.firstError,
      offeredPerSec: round(rounds.reduce((s, r) => s + r.offeredPerSec, 0) / rounds.length, 0),
      servedBy,
      meanMsByServer,
      slowPicks,
      generator: {
        cpuShareMax: round(Math.max(...rounds.map((r) => r.generator.cpuShare)), 3),
        cpuUsPerCall: round(rounds.reduce((s, r) => s + r.generator.cpuUsPerCall, 0) / rounds.length, 1),
        dispatchLateP99Ms: Math.max(...rounds.map((r) => r.generator.dispatchLate.p99)),
        dispatchLateMaxMs: Math.max(...rounds.map((r) => r.generator.dispatchLate.max)),
        loopDelayP99Ms: Math.max(...rounds.map((r) => r.generator.loopDelayP99Ms)),
        maxInFlight: Math.max(...rounds.map((r) => r.generator.maxInFlight)),
      },
    };
  }
  return { order: groups.map((g) => g.order.join(',')), policies };
}

function worstGenerator(points) {
  const all = points.flatMap((point) => Object.values(point.policies).map((v) => v.generator));
  return {
    cpuShareMax: Math.max(...all.map((g) => g.cpuShareMax)),
    dispatchLateP99Ms: Math.max(...all.map((g) => g.dispatchLateP99Ms)),
    loopDelayP99Ms: Math.max(...all.map((g) => g.loopDelayP99Ms)),
  };
}

// 5. balancing (issue 4): in one process, three Greeter servers registered by the library, one of them
// slow (+20 ms); 20,000 calls at concurrency 32 through ClientFactory with round robin and 20,000 with
// p2c (loadBalancing: 'p2c_ewma'), in alternating rounds of 5,000. Tail latency and the slow server's share.
import { rotate } from './lib/ab.mjs';
import { median, round, withTimeout } from './lib/common.mjs';
import { closedLoop, createDiscoveryContext, discoveredGreeter, pacedLoad, sayHello } from './lib/client.mjs';
import { startBenchEtcd } from './lib/etcd.mjs';
import { merged, percentileMs, summarize } from './lib/hdr.mjs';
import { startGreeterServer } from './lib/greeter-server.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { METADATA, loopbackEndpoint, registerInstance } from './lib/registry.mjs';
import { filter, firstValueFrom } from 'rxjs';

const CALLS = 20_000;
const GROUPS = 4;
const CONCURRENCY = 32;
const SLOW_MS = 20;
const WARMUP_CALLS = 1_000;
/** The supplementary paced run: the same servers, calls at a steady rate well below saturation. */
const PACED_RATE = 500;
const PACED_CALLS = 1_000;
const PACED_GROUPS = 2;

await runBenchmark('balancing', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());

  const servers = [await startGreeterServer(), await startGreeterServer(), await startGreeterServer({ delayMs: SLOW_MS })];
  const slow = servers[2];
  ctx.defer(() => Promise.all(servers.map((server) => server.shutdown(1_000))));
  for (const server of servers) {
    const { close } = await registerInstance({ hosts: [etcd.endpoint], registration: { serviceName: 'greeter', metadata: METADATA } }, loopbackEndpoint(server.port));
    ctx.defer(close);
  }

  const { app, factory } = await createDiscoveryContext({ hosts: [etcd.endpoint] });
  ctx.defer(() => app.close());
  await withTimeout(firstValueFrom(factory.instances('greeter').pipe(filter((list) => list.length === 3))), 15_000, '3 greeters discovered');
  const policies = {
    roundRobin: await discoveredGreeter(factory, { loadBalancing: 'round_robin' }),
    p2c: await discoveredGreeter(factory, { loadBalancing: 'p2c_ewma' }),
  };
  const served = { roundRobin: {}, p2c: {} };
  const runRound = (name, calls, count = true) =>
    closedLoop({
      concurrency: CONCURRENCY,
      calls,
      call: () => sayHello(policies[name]),
      onReply: count ? (reply) => (served[name][reply.address] = (served[name][reply.address] ?? 0) + 1) : undefined,
    });

  for (const name of Object.keys(policies)) await runRound(name, WARMUP_CALLS, false);
  const groups = await rotate(GROUPS, policies, (name) => runRound(name, CALLS / GROUPS), (i, group) =>
    console.log(`group ${i + 1}/${GROUPS}: p99 round robin ${percentileMs(group.roundRobin.histogram, 99)} ms, p2c ${percentileMs(group.p2c.histogram, 99)} ms`));

  // Supplementary: paced (open loop) calls below saturation, where latency is the servers' and the policy's.
  const pacedServed = { roundRobin: {}, p2c: {} };
  const pacedGroups = await rotate(PACED_GROUPS, policies, (name) => pacedLoad({
    ratePerSec: PACED_RATE,
    calls: PACED_CALLS,
    maxInFlight: CONCURRENCY,
    call: () => sayHello(policies[name]),
    onReply: (reply) => (pacedServed[name][reply.address] = (pacedServed[name][reply.address] ?? 0) + 1),
  }));
  const paced = Object.fromEntries(Object.keys(policies).map((name) => {
    const rounds = pacedGroups.map((g) => g[name]);
    const total = Object.values(pacedServed[name]).reduce((a, b) => a + b, 0);
    return [name, {
      ...summarize(merged(rounds.map((r) => r.histogram))),
      slowShare: round((pacedServed[name][slow.address] ?? 0) / Math.max(1, total), 4),
      failed: rounds.reduce((sum, r) => sum + r.failed, 0),
      skipped: rounds.reduce((sum, r) => sum + r.skipped, 0),
    }];
  }));
  printTable(`balancing (supplementary): ${PACED_CALLS * PACED_GROUPS} calls per policy paced at ${PACED_RATE}/s, at most ${CONCURRENCY} in flight (latency ms)`, paced);

  const failed = groups.reduce((sum, g) => sum + g.roundRobin.failed + g.p2c.failed, 0);
  const pooled = Object.fromEntries(Object.keys(policies).map((name) => {
    const rounds = groups.map((g) => g[name]);
    const total = Object.values(served[name]).reduce((a, b) => a + b, 0);
    return [name, {
      ...summarize(merged(rounds.map((r) => r.histogram))),
      perSec: round(median(rounds.map((r) => r.throughput)), 0),
      slowShare: round((served[name][slow.address] ?? 0) / total, 4),
      failed: rounds.reduce((sum, r) => sum + r.failed, 0),
    }];
  }));
  printTable(`balancing: ${CALLS} calls per policy, concurrency ${CONCURRENCY}, one server +${SLOW_MS} ms (latency ms)`, pooled);
  printTable('balancing: calls per server', Object.fromEntries(Object.entries(served).map(([name, byAddress]) =>
    [name, Object.fromEntries(servers.map((s) => [s === slow ? `${s.address} (slow)` : s.address, byAddress[s.address] ?? 0]))])));

  const headline = {
    rrP99Ms: pooled.roundRobin.p99,
    p2cP99Ms: pooled.p2c.p99,
    p99Ratio: round(pooled.p2c.p99 / pooled.roundRobin.p99, 4),
    slowShareRR: pooled.roundRobin.slowShare,
    slowShareP2c: pooled.p2c.slowShare,
    rrP50Ms: pooled.roundRobin.p50,
    p2cP50Ms: pooled.p2c.p50,
    throughputRatio: round(pooled.p2c.perSec / pooled.roundRobin.perSec, 4),
    failedCalls: failed,
    pacedP99Ratio: round(paced.p2c.p99 / paced.roundRobin.p99, 4),
    pacedSlowShareP2c: paced.p2c.slowShare,
  };
  // What the figures say, from this run's numbers.
  const analysis = [
    `Closed loop at concurrency ${CONCURRENCY} saturates the process: a 0 ms handler still takes p50 ${pooled.roundRobin.p50} ms (round robin) / ${pooled.p2c.p50} ms (p2c) of queueing, ` +
      `so the slow server's +${SLOW_MS} ms is within the queueing, and p2c's load (go-zero's sqrt(latency EWMA) x (in-flight + 1)) still sends it ` +
      `${(headline.slowShareP2c * 100).toFixed(1)}% of calls${headline.slowShareP2c > 0.01 ? ': over 1%, so p2c\'s p99 still holds slow calls' : ''}.`,
    ...(Math.max(pooled.roundRobin.p99, pooled.p2c.p99) > 2 * (SLOW_MS + pooled.roundRobin.p50)
      ? [`p99s this far above ${SLOW_MS} ms + the queueing (round robin ${pooled.roundRobin.p99} ms, p2c ${pooled.p2c.p99} ms) are host stalls, which land on either policy's rounds: p99Ratio is then noise.`]
      : []),
    `Below saturation (paced at ${PACED_RATE}/s): p2c sends ${(paced.p2c.slowShare * 100).toFixed(2)}% to the slow server; p99 ${paced.p2c.p99} ms vs round robin ${paced.roundRobin.p99} ms (ratio ${headline.pacedP99Ratio}).`,
  ];
  writeResult('balancing', {
    startedAt: ctx.startedAt,
    headline,
    goals: [goal('p99Ratio (p2c / round robin) <= 0.5', headline.p99Ratio, '<=', 0.5), goal('no call failed', failed, '==', 0)],
    notes: [
      ...analysis,
      `Pooled over ${GROUPS} alternating rounds of ${CALLS / GROUPS} calls per policy; both clients from one ClientFactory, one etcd watch.`,
      'Servers and client share this process (as the issue asks), so server work competes with the client for one event loop.',
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      calls: CALLS, concurrency: CONCURRENCY, slowMs: SLOW_MS,
      pooled,
      paced: { ratePerSec: PACED_RATE, callsPerPolicy: PACED_CALLS * PACED_GROUPS, summaries: paced, servedBy: pacedServed },
      servedBy: served,
      slowAddress: slow.address,
      perGroup: groups.map((g, i) => ({ group: i + 1, order: g.order.join(','), rrP99Ms: percentileMs(g.roundRobin.histogram, 99), p2cP99Ms: percentileMs(g.p2c.histogram, 99) })),
    },
  });
});

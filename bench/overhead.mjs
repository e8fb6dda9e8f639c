// 1. overhead: what discovery costs per call. Three Greeter servers in one separate process (grpc-js
// servers, each registered in etcd by the library's EtcdRegistration); in this client process the same Nest
// ClientGrpc code path for both sides: the discovered client (ClientFactory: target etcd:///greeter, our
// resolver, round_robin) and a plain Nest ClientGrpcProxy on the static target ipv4:P1,P2,P3 with
// round_robin. Unary calls at concurrency 64; warm-up, then short rounds in rotating order, with a second,
// identical static client as an A/A control that shows the noise floor of this run. Headline ratios are
// medians of per-group ratios (discovered / static).
import { rotate } from './lib/ab.mjs';
import { ROOT, median, round, withTimeout } from './lib/common.mjs';
import { closedLoop, createDiscoveryContext, discoveredGreeter, sayHello, staticGreeter } from './lib/client.mjs';
import { startBenchEtcd } from './lib/etcd.mjs';
import { merged, percentileMs, summarize } from './lib/hdr.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';
import { filter, firstValueFrom } from 'rxjs';

const CONCURRENCY = 64;
const GROUPS = Number(process.env.BENCH_OVERHEAD_GROUPS ?? 36);
const ROUND_MS = Number(process.env.BENCH_OVERHEAD_ROUND_MS ?? 400);
const WARMUP_MS = 1_000;
const SERVERS = 3;
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;

await runBenchmark('overhead', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());

  const servers = forkChild('greeter-servers', REGISTRANT);
  await servers.waitFor((message) => message?.ready, 15_000, 'ready');
  await servers.request('init', { hosts: [etcd.endpoint] });
  await servers.request('serve', { count: SERVERS });

  const { app, factory } = await createDiscoveryContext({ hosts: [etcd.endpoint] });
  ctx.defer(() => app.close());
  const instances = await withTimeout(
    firstValueFrom(factory.instances('greeter').pipe(filter((list) => list.length === SERVERS))),
    15_000,
    `${SERVERS} greeters discovered`,
  );
  const addresses = instances.map((instance) => instance.address).sort();

  const discovered = await discoveredGreeter(factory);
  const baseline = staticGreeter(addresses, 'static');
  const twin = staticGreeter(addresses, 'twin');
  ctx.defer(() => baseline.client.close());
  ctx.defer(() => twin.client.close());

  const variants = {
    discovered: { target: 'etcd:///greeter (ClientFactory, our resolver, round_robin)', service: discovered },
    static: { target: `ipv4:${addresses.join(',')} (ClientGrpcProxy, round_robin)`, service: baseline.service },
    staticTwin: { target: 'the same static target, a second ClientGrpcProxy with its own connections (A/A control)', service: twin.service },
  };
  const callsPerServer = Object.fromEntries(Object.keys(variants).map((name) => [name, {}]));
  const runRound = (name, durationMs, count = true) =>
    closedLoop({
      concurrency: CONCURRENCY,
      durationMs,
      call: () => sayHello(variants[name].service),
      onReply: count ? (reply) => (callsPerServer[name][reply.address] = (callsPerServer[name][reply.address] ?? 0) + 1) : undefined,
    });

  for (let i = 0; i < 2; i++) for (const name of Object.keys(variants)) await runRound(name, WARMUP_MS / 2, false);

  const groups = await rotate(GROUPS, variants, (name) => runRound(name, ROUND_MS), (i, group) => {
    if ((i + 1) % 10 === 0) console.log(`group ${i + 1}/${GROUPS}: ${Object.entries(group).map(([n, r]) => `${n} ${r.throughput.toFixed(0)}/s`).join(', ')}`);
  });

  const failed = groups.reduce((sum, g) => sum + g.discovered.failed + g.static.failed + g.staticTwin.failed, 0);
  if (failed > 0) {
    const first = groups.flatMap((g) => [g.discovered, g.static, g.staticTwin]).find((r) => r.firstError)?.firstError;
    throw new Error(`${failed} calls failed; first: ${first?.message ?? first}`);
  }

  const ratios = (a, b) => ({
    throughput: a.throughput / b.throughput,
    p50: percentileMs(a.histogram, 50) / percentileMs(b.histogram, 50),
    p99: percentileMs(a.histogram, 99) / percentileMs(b.histogram, 99),
    cpu: a.cpuUsPerCall / b.cpuUsPerCall,
  });
  const perGroup = groups.map((g, i) => {
    const d = ratios(g.discovered, g.static);
    const aa = ratios(g.staticTwin, g.static);
    return {
      group: i + 1,
      order: g.order.join(','),
      discoveredPerSec: round(g.discovered.throughput, 0),
      staticPerSec: round(g.static.throughput, 0),
      twinPerSec: round(g.staticTwin.throughput, 0),
      discoveredP99Ms: percentileMs(g.discovered.histogram, 99),
      staticP99Ms: percentileMs(g.static.histogram, 99),
      twinP99Ms: percentileMs(g.staticTwin.histogram, 99),
      throughputRatio: round(d.throughput, 4),
      p50Ratio: round(d.p50, 4),
      p99Ratio: round(d.p99, 4),
      cpuPerCallRatio: round(d.cpu, 4),
      aaThroughputRatio: round(aa.throughput, 4),
      aaP50Ratio: round(aa.p50, 4),
      aaP99Ratio: round(aa.p99, 4),
    };
  });
  const med = (field) => round(median(perGroup.map((g) => g[field])), 4);
  const headline = { throughputRatio: med('throughputRatio'), p50Ratio: med('p50Ratio'), p99Ratio: med('p99Ratio') };
  const control = {
    clientCpuPerCallRatio: med('cpuPerCallRatio'),
    aaThroughputRatio: med('aaThroughputRatio'),
    aaP50Ratio: med('aaP50Ratio'),
    aaP99Ratio: med('aaP99Ratio'),
    aaThroughputRatioRange: [Math.min(...perGroup.map((g) => g.aaThroughputRatio)), Math.max(...perGroup.map((g) => g.aaThroughputRatio))],
    throughputRatioRange: [Math.min(...perGroup.map((g) => g.throughputRatio)), Math.max(...perGroup.map((g) => g.throughputRatio))],
  };
  const pooled = Object.fromEntries(Object.keys(variants).map((name) => {
    const rounds = groups.map((g) => g[name]);
    return [name, {
      ...summarize(merged(rounds.map((r) => r.histogram))),
      perSec: round(rounds.reduce((n, r) => n + r.completed, 0) / (rounds.reduce((t, r) => t + r.elapsedMs, 0) / 1000), 0),
      cpuUsPerCall: round(median(rounds.map((r) => r.cpuUsPerCall)), 1),
    }];
  }));

  printTable(`overhead: ${GROUPS} groups of ${ROUND_MS} ms rounds (rotating order), concurrency ${CONCURRENCY}; every 5th group`,
    perGroup.filter((_, i) => i % 5 === 0));
  printTable('overhead: pooled over all rounds (latency ms; perSec; client CPU us per call)', pooled);
  printTable('overhead: calls per server (round robin on every side)', callsPerServer);
  printTable('overhead: medians of per-group ratios', { 'discovered / static': { ...headline, cpuPerCall: control.clientCpuPerCallRatio },
    'A/A: twin / static': { throughputRatio: control.aaThroughputRatio, p50Ratio: control.aaP50Ratio, p99Ratio: control.aaP99Ratio, cpuPerCall: '' } });

  const noiseNotes = [];
  if (control.aaThroughputRatio < 0.97 || control.aaThroughputRatio > 1.03 || control.aaP99Ratio > 1.05 || control.aaP99Ratio < 0.95) {
    noiseNotes.push(
      `In this run the A/A control (two identical static clients) alone gave a throughput ratio of ${control.aaThroughputRatio} and a p99 ratio of ${control.aaP99Ratio}: ` +
        'differences of that size between discovered and static are within the noise of this host.',
    );
  }
  writeResult('overhead', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal('throughputRatio (discovered / static) >= 0.97', headline.throughputRatio, '>=', 0.97),
      goal('p99Ratio (discovered / static) <= 1.05', headline.p99Ratio, '<=', 1.05),
    ],
    notes: [
      ...noiseNotes,
      'Medians of per-group ratios; the order of the three rounds in a group rotates.',
      'A/A control: a second static client measured the same way; its ratio to the first is what noise alone gives in this run.',
      'Servers: 3 grpc-js Greeter servers in one separate process, registered by the library. Client: this process, Nest ClientGrpc proxies.',
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      concurrency: CONCURRENCY,
      groups: GROUPS,
      roundMs: ROUND_MS,
      targets: Object.fromEntries(Object.entries(variants).map(([name, v]) => [name, v.target])),
      control,
      pooled,
      callsPerServer,
      perGroup,
    },
  });
});

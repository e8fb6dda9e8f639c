// Renders docs/benchmarks.md and docs/charts/*.svg from docs/results/*.json, the last result of each
// benchmark (bench/lib/recorded-results.mjs), with vega-lite -> vega -> SVG (no browser). Run by
// bench/run.mjs after the benchmarks; `node bench/report.mjs` re-renders alone.
// Everything in those files comes from the JSON: they are never edited by hand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { ROOT } from './lib/common.mjs';
import { recordedResults } from './lib/recorded-results.mjs';

const DOCS = `${ROOT}docs`;
const CHARTS = `${DOCS}/charts`;
const ORDER = ['overhead', 'propagation', 'scale', 'registration', 'balancing', 'routing', 'proxy'];

async function svg(spec) {
  const compiled = vegaLite.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { legend: { labelLimit: 400 }, axis: { labelLimit: 300 } }, ...spec }, { logger: quietLogger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

/** vega-lite's warnings would go to the console; a chart spec problem shows in the chart. */
const quietLogger = { level() { return quietLogger; }, error: (...a) => console.error(...a), warn() { return quietLogger; }, info() { return quietLogger; }, debug() { return quietLogger; } };

const fmt = (value) => (typeof value === 'number' ? String(Math.round(value * 1000) / 1000) : Array.isArray(value) ? value.join(' .. ') : String(value));
const table = (header, rows) => [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n');
const goalsTable = (goals) => table(['goal', 'measured', 'target', 'met'], goals.map((g) => [g.description, g.value, `${g.op} ${g.target}`, g.met ? 'yes' : '**no**']));
const headlineTable = (r, keys) => table(['figure', 'value'], keys.filter((k) => r[k] !== undefined).map((k) => [`\`${k}\``, r[k]]));
const percentileRows = (summaries) => Object.entries(summaries).map(([name, s]) => [name, s.count, s.p50, s.p90, s.p99, s.max]);

const sections = {
  async overhead(r) {
    const perGroup = r.details.perGroup;
    const points = perGroup.flatMap((g) => [
      { comparison: 'discovered / static', metric: 'throughput', ratio: g.throughputRatio },
      { comparison: 'discovered / static', metric: 'p50 latency', ratio: g.p50Ratio },
      { comparison: 'discovered / static', metric: 'p99 latency', ratio: g.p99Ratio },
      { comparison: 'A/A: static twin / static', metric: 'throughput', ratio: g.aaThroughputRatio },
      { comparison: 'A/A: static twin / static', metric: 'p50 latency', ratio: g.aaP50Ratio },
      { comparison: 'A/A: static twin / static', metric: 'p99 latency', ratio: g.aaP99Ratio },
    ]);
    const chart = await svg({
      title: `Per-group ratios (${perGroup.length} groups), median as a tick; 1.0 = no difference`,
      width: 420, height: 260,
      layer: [
        {
          data: { values: points },
          encoding: { x: { field: 'metric', type: 'nominal', title: null, axis: { labelAngle: 0 } }, xOffset: { field: 'comparison' }, color: { field: 'comparison', type: 'nominal', title: null, legend: { orient: 'bottom' } } },
          layer: [
            { mark: { type: 'point', opacity: 0.35, filled: true, size: 25 }, encoding: { y: { field: 'ratio', type: 'quantitative', scale: { zero: false }, title: 'ratio' } } },
            { mark: { type: 'tick', thickness: 3, size: 22 }, encoding: { y: { aggregate: 'median', field: 'ratio', type: 'quantitative' } } },
          ],
        },
        { data: { values: [{ y: 1 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
      ],
    });
    const p = r.details.pooled;
    return {
      chart,
      text: [
        `Unary SayHello at concurrency ${r.details.concurrency}, the same Nest \`ClientGrpc\` code path on both sides, servers in a separate process. ` +
          `${r.details.groups} groups of ${r.details.roundMs} ms rounds in rotating order: the discovered client (${r.details.targets.discovered}), ` +
          `the static baseline (${r.details.targets.static}) and an A/A control (${r.details.targets.staticTwin}). Headline ratios are medians of per-group ratios.`,
        headlineTable(r, ['throughputRatio', 'p50Ratio', 'p99Ratio']),
        table(['A/A control (noise of this run)', 'value'], [
          ['throughput ratio, median', r.details.control.aaThroughputRatio],
          ['p50 ratio, median', r.details.control.aaP50Ratio],
          ['p99 ratio, median', r.details.control.aaP99Ratio],
          ['client CPU per call, discovered / static', r.details.control.clientCpuPerCallRatio],
          ['per-group throughput ratio range, discovered / static', r.details.control.throughputRatioRange],
          ['per-group throughput ratio range, A/A', r.details.control.aaThroughputRatioRange],
        ]),
        table(['pooled', 'calls', 'calls/s', 'p50 ms', 'p99 ms', 'client CPU us/call'], Object.entries(p).map(([n, s]) => [n, s.count, s.perSec, s.p50, s.p99, s.cpuUsPerCall])),
      ],
    };
  },

  async propagation(r) {
    const s = r.details.samples;
    const values = [
      ...s.addMs.map((v) => ({ what: 'add: put -> first call', ms: v })),
      ...s.removeMs.map((v) => ({ what: 'remove: delete -> last call', ms: v })),
      ...s.rawWatchMs.map((v) => ({ what: 'raw: put -> bare watch event', ms: v })),
      ...(s.connectFloorMs ?? []).map((v) => ({ what: 'floor: dial -> first call', ms: v })),
    ].map((d) => ({ ...d, ms: Math.max(0.1, d.ms) }));
    const chart = await svg({
      title: 'Propagation samples (ms, log scale)',
      width: 420, height: 260, data: { values },
      mark: { type: 'boxplot', extent: 1.5 },
      encoding: { x: { field: 'what', type: 'nominal', title: null, axis: { labelAngle: -20 } }, y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' }, color: { field: 'what', legend: null } },
    });
    return {
      chart,
      text: [
        `A client under steady load (${r.details.ratePerSec} calls/s, ClientFactory, round robin) on ${r.details.baseInstances} base instances; ` +
          `another process registers a fresh instance through the library (EtcdRegistration of an app context with EtcdDiscoveryModule) and removes it after it served, ${s.addMs.length} times. ` +
          'Add and remove are timed in that process (its own write vs its own server receiving calls). In the same run, in the loaded client process: raw put -> event on a bare etcd3 watcher, and the floor for a first call (a fresh channel dialling a fresh server).',
        headlineTable(r, ['addP50Ms', 'addP99Ms', 'removeP50Ms', 'removeP99Ms', 'rawWatchP50Ms', 'rawWatchP99Ms', 'connectFloorP50Ms', 'connectFloorP99Ms', 'failedCalls']),
        'Where the time goes (ms):',
        table(['stage', 'n', 'p50', 'p90', 'p99', 'max'], percentileRows(r.details.breakdown)),
      ],
    };
  },

  async scale(r) {
    const c = r.details.churn;
    const values = ['p50', 'p90', 'p99'].flatMap((p) => [
      { percentile: p, seen: 'ClientFactory list', ms: c.lag[p] },
      { percentile: p, seen: 'bare etcd3 watcher', ms: c.rawLag[p] },
    ]);
    const chart = await svg({
      title: `Churn ${r.details.churn.samples.length} changes: write -> seen (ms)`,
      width: 320, height: 220, data: { values },
      mark: 'bar',
      encoding: { x: { field: 'percentile', type: 'nominal', title: null }, xOffset: { field: 'seen' }, y: { field: 'ms', type: 'quantitative' }, color: { field: 'seen', type: 'nominal', title: null, legend: { orient: 'bottom' } } },
    });
    return {
      chart,
      text: [
        `${r.services} services x ${r.instances / r.services} instances registered from ${r.registrantProcesses} processes through the library (one app context per process, one lease per process); one fresh client process follows every service through ClientFactory's instance-list Observables (no channels).`,
        headlineTable(r, ['instances', 'services', 'coldDiscoverAllMs', 'heapBytesPerInstance', 'leasesGranted', 'registrantProcesses', 'churnLagP99Ms']),
        table(['baseline / detail', 'value'], [
          ['bare etcd3: same 100 prefix reads + watches (ms)', r.details.rawListAllMs],
          ['coldDiscoverAllMs / bare etcd3', r.details.coldVsRawRatio],
          ['churn lag p50, ClientFactory / bare watcher (ms)', `${r.details.churnLagP50Ms} / ${r.details.rawChurnLagP50Ms}`],
          ['churn lag p99, bare watcher (ms)', r.details.rawChurnLagP99Ms],
          ['churn changes seen / missed', `${r.details.churnChanges - r.details.churnMissed} / ${r.details.churnMissed}`],
          ['heap growth for 1,000 instances (bytes)', r.details.heapGrowthBytes],
          ['one-time warm-up heap growth, 100 other instances (bytes)', r.details.warmUpHeapGrowthBytes],
          ['etcd watchers (registrants own keys + client services)', r.details.etcdWatchers],
        ]),
      ],
    };
  },

  async registration(r) {
    const s = r.details.summary;
    const metrics = [
      ['keepalive requests/s per process', 'keepAlivesPerSecPerProcess'],
      ['leases held', 'leasesHeld'],
      ['etcd bytes in/s per process', 'etcdBytesInPerSecPerProcess'],
      ['etcd CPU ms/s', 'etcdCpuMsPerSec'],
    ];
    const values = metrics.flatMap(([label, key]) => [
      { metric: label, mode: 'one lease per process (library)', value: s.shared[key] },
      { metric: label, mode: 'one lease per instance', value: s.perInstance[key] },
    ]);
    const chart = await svg({
      title: `${r.processes} processes x ${r.instancesPerProcess} instances, TTL ${r.ttlSeconds} s`,
      data: { values },
      facet: { field: 'metric', type: 'nominal', title: null, sort: metrics.map(([label]) => label) },
      columns: 2,
      spec: { width: 200, height: 120, mark: 'bar', encoding: { x: { field: 'mode', type: 'nominal', axis: null, sort: null }, y: { field: 'value', type: 'quantitative', title: null }, color: { field: 'mode', type: 'nominal', title: null, sort: null, legend: { orient: 'bottom' } } } },
      resolve: { scale: { y: 'independent' } },
    });
    const fields = Object.keys(s.shared);
    return {
      chart,
      text: [
        `What ${r.processes} registered processes cost etcd, read from etcd's own /metrics and /proc: the library's one lease per process against one lease per instance written with plain etcd3 (lease, put, keepalive per instance: the way go-zero's publisher and OpenIM register). Alternating rounds; medians.`,
        table(['measure', 'one lease per process (library)', 'one lease per instance', 'nothing registered'], fields.map((f) => [f, s.shared[f], s.perInstance[f], r.details.idle?.[f] ?? ''])),
      ],
    };
  },

  async balancing(r) {
    const d = r.details;
    const names = { roundRobin: 'round robin', p2c: 'p2c_ewma', allFast: 'all-fast pool (round robin)', twoFast: 'p2c_ewma, two fast servers only' };
    const color = { field: 'policy', type: 'nominal', title: null, sort: Object.values(names), legend: { orient: 'bottom', columns: 2 } };
    const at = (point) => `${Math.round(point.load * 100)} % (${point.ratePerSec}/s)`;
    const latency = d.points.flatMap((point) => Object.entries(point.policies).map(([n, v]) => ({ load: at(point), policy: names[n], ms: v.p99 })));
    const share = d.points.flatMap((point) => ['roundRobin', 'p2c'].map((n) => ({ load: at(point), policy: names[n], share: point.policies[n].slowShare })));
    const x = { field: 'load', type: 'nominal', title: 'offered load (share of the all-fast pool\'s capacity)', sort: null, axis: { labelAngle: 0 } };
    const chart = await svg({
      hconcat: [
        { title: 'p99 latency from the scheduled start (ms)', data: { values: latency }, width: 380, height: 220, mark: 'bar',
          encoding: { x, xOffset: { field: 'policy', sort: Object.values(names) }, y: { field: 'ms', type: 'quantitative', title: null }, color } },
        { title: `Calls on the slow (+${d.slowMs} ms) server`, data: { values: share }, width: 260, height: 220, mark: 'bar',
          encoding: { x, xOffset: { field: 'policy', sort: Object.values(names) }, y: { field: 'share', type: 'quantitative', axis: { format: '%' }, title: null }, color } },
      ],
    });
    return {
      chart,
      text: [
        `Three Greeter servers, each in its own process and registered in etcd through the package, each serving one call at a time in ${d.serviceMs} ms ` +
          `(capacity ${Math.round(1000 / d.serviceMs)}/s each); one answers ${d.slowMs} ms later without serving fewer calls per second. A client process (ClientFactory) found the all-fast pool's capacity ` +
          `(closed-loop ramp: ${d.capacity.perSec} calls/s, nominal ${d.capacity.nominalPerSec}), then started calls at Poisson arrival times at ${d.points.map((point) => `${Math.round(point.load * 100)} %`).join(', ')} of it, ` +
          `timing each from its scheduled start; ${d.callsPerPoint} calls per policy per point in ${d.groups} rounds of rotating order. The all-fast pool is the same three servers with the delay switched off.`,
        headlineTable(r, ['rrP99Ms', 'p2cP99Ms', 'allFastP99Ms', 'twoFastP99Ms', 'p99Ratio', 'p99OverAllFast', 'slowShareRR', 'slowShareP2c', 'rrP50Ms', 'p2cP50Ms', 'callsPerPolicy', 'failedCalls', 'capacityPerSec', 'clientCpuShareMax', 'clientDispatchLateP99Ms']),
        table(['load', 'policy', 'calls', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'slow share', 'failed', 'client CPU (max)'],
          d.points.flatMap((point) => Object.entries(point.policies).map(([n, v]) => [at(point), names[n], v.count, v.p50, v.p90, v.p99, v.p999, v.slowShare, v.failed, v.generator.cpuShareMax]))),
        table(['capacity ramp: concurrency', 'calls/s', 'p50 ms', 'p99 ms'], d.capacity.ramp.map((step) => [step.concurrency, step.perSec, step.p50, step.p99])),
      ],
    };
  },

  async routing(r) {
    const d = r.details;
    const bounded = `balanceFactor ${d.hot.balanceFactor}`;
    const unbounded = 'balanceFactor 100 (no bound)';
    const values = [[bounded, d.hot.bounded], [unbounded, d.hot.unbounded]].flatMap(([policy, run]) => {
      const average = run.perInstance.reduce((a, b) => a + b, 0) / run.perInstance.length;
      return run.perInstance.map((calls, i) => ({ policy, instance: `#${i + 1}`, load: calls / average }));
    });
    const chart = await svg({
      title: `Hot key in ${d.hot.share * 100} % of ${d.hot.calls} calls, concurrency ${d.hot.concurrency}: calls per instance / average`,
      width: 420, height: 220,
      layer: [
        { data: { values }, mark: 'bar', encoding: { x: { field: 'instance', type: 'nominal', title: null, sort: null, axis: { labelAngle: 0 } }, xOffset: { field: 'policy' }, y: { field: 'load', type: 'quantitative', title: 'load / average' }, color: { field: 'policy', type: 'nominal', title: null, legend: { orient: 'bottom' } } } },
        { data: { values: [{ y: d.hot.bound }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
      ],
    });
    return {
      chart,
      text: [
        'One process: real grpc-js Greeter servers, clients through `ClientFactory` over instance lists from `nestjs-etcd-discovery/testing` (no etcd: the policies, subsets and routes are measured, not discovery).',
        headlineTable(r, ['hashRemapFraction', 'hashMaxOverAvgLoad', 'hashMaxOverAvgLoadUnbounded', 'subsetClients', 'subsetInstances', 'subsetSize', 'subsetConnectionsPerClient', 'subsetMaxOverAvgClients', 'perRequestMisroutes', 'failedCalls']),
        table(['subsets', 'min', 'max'], [
          ['connections per client (client channelz)', d.subsets.connectionsPerClient.min, d.subsets.connectionsPerClient.max],
          ['clients per instance (server channelz)', d.subsets.clientsPerInstance.min, d.subsets.clientsPerInstance.max],
          ['instances reached by calls, per client', d.subsets.instancesReachedPerClient.min, d.subsets.instancesReachedPerClient.max],
        ]),
        table(['routes: policy', 'calls', 'canary calls', 'misroutes'], Object.entries(d.routes).map(([name, v]) => [name, v.calls, v.canaryCalls, v.misroutes])),
      ],
    };
  },

  async proxy(r) {
    const d = r.details;
    const watchers = [
      { clients: `through one grpc-proxy`, watchers: r.upstreamWatchers },
      { clients: 'direct to etcd', watchers: r.directWatchers },
    ];
    const lags = [['through the proxy', d.viaProxy.lag], ['direct to etcd', d.direct.lag], ['bare watcher on etcd', d.viaProxy.rawLag]]
      .flatMap(([path, s]) => ['p50', 'p90', 'p99'].map((q) => ({ path, percentile: q, ms: s[q] })));
    const chart = await svg({
      hconcat: [
        { title: `Watchers in etcd for ${r.clients} clients x ${r.services} services`, data: { values: watchers }, width: 200, height: 200, mark: 'bar',
          encoding: { x: { field: 'clients', type: 'nominal', title: null, axis: { labelAngle: 0 } }, y: { field: 'watchers', type: 'quantitative', title: null }, color: { field: 'clients', legend: null } } },
        { title: 'Change written -> seen by a client (ms)', data: { values: lags }, width: 260, height: 200, mark: 'bar',
          encoding: { x: { field: 'percentile', type: 'nominal', title: null, axis: { labelAngle: 0 } }, xOffset: { field: 'path' }, y: { field: 'ms', type: 'quantitative', title: null },
            color: { field: 'path', type: 'nominal', title: null, legend: { orient: 'bottom' } } } },
      ],
    });
    return {
      chart,
      text: [
        `${r.clients} client processes (Nest application contexts with EtcdDiscoveryModule, hosts = the proxy) follow ${r.services} services through ClientFactory.instances() and one \`etcd grpc-proxy start --endpoints=<etcd> --listen-addr=127.0.0.1:<port>\`; ` +
          `${d.instancesPerService} registrant processes register one instance of every service through the same proxy (one lease each, TTL ${d.ttlSeconds} s). ` +
          `${d.viaProxy.changes} record changes are written to etcd; then the same processes follow etcd directly and see ${d.direct.changes} more (the baseline).`,
        headlineTable(r, ['clients', 'services', 'upstreamWatchers', 'directWatchers', 'etcdctlWatchesUpstreamWatchers', 'propagationP50Ms', 'propagationP99Ms', 'directPropagationP99Ms', 'rawWatchP99Ms', 'missedChanges', 'failedCalls']),
        table(['fan-out and cost', 'value'], [
          ['client watches per watcher in etcd', d.fanOut.watchersPerUpstream],
          ['etcd bytes sent per change, through the proxy / direct', `${d.fanOut.etcdSentBytesPerChangeViaProxy} / ${d.fanOut.etcdSentBytesPerChangeDirect}`],
          ['proxy CPU per delivered event (ms)', d.fanOut.proxyCpuMsPerDeliveredEvent],
          ['proxy RSS per client (bytes)', d.fanOut.proxyRssBytesPerClient],
          ['slowest client per change, p99 (ms)', d.viaProxy.everyClient.p99],
        ]),
        table(['lease of a registrant (TTL ' + d.ttlSeconds + ' s): signal -> key deleted (ms)', 'behind the proxy', 'on etcd directly'], [
          ['frozen (SIGSTOP: connection stays open)', d.leaseExpiry.proxyFrozenMs, d.leaseExpiry.etcdFrozenMs],
          ['killed (SIGKILL: connection closes)', d.leaseExpiry.proxyKilledMs, d.leaseExpiry.etcdKilledMs],
        ]),
        table(['one registry record in etcd', 'bytes'], [
          ['key + value', d.storage.recordBytes],
          ['db in use (etcd_mvcc_db_total_size_in_use_in_bytes)', d.storage.dbInUseBytesPerRecord],
          ['etcd RSS growth (coarse)', d.storage.etcdRssBytesPerRecord],
        ]),
      ],
    };
  },
};

const TITLES = {
  overhead: '1. Overhead per call: discovered vs static target',
  propagation: '2. Propagation: how fast a new or removed instance shows up',
  scale: '3. Scale: 1,000 instances, cold discovery, churn',
  registration: '4. Registration: what it costs etcd',
  balancing: '5. Balancing: round robin vs p2c_ewma with one slow instance, open loop',
  routing: '6. Routing: consistent hashing, subsetting, per-request routes',
  proxy: '7. Many clients through etcd\'s gRPC proxy',
};

export async function renderReport() {
  mkdirSync(CHARTS, { recursive: true });
  const results = recordedResults(ORDER);
  const written = [];
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/report.mjs) from docs/results/*.json. Do not edit by hand. -->',
    '',
    'Every figure below was measured by `npm run bench` (one benchmark: `npm run bench -- NAME`, names: ' + ORDER.join(', ') + '). ' +
      'Each benchmark starts its own etcd on loopback and its own processes, and compares against a baseline measured in the same run ' +
      '(alternating rounds, medians of ratios): the machine is shared and noisy, so absolute times vary from run to run; the ratios and the baselines beside them are the result. ' +
      'Each section is that benchmark\'s last recorded run (`docs/results/NAME.json`, written when the benchmark succeeds): running one benchmark replaces its own section only.',
    '',
  ];
  if (results.length > 0) {
    // The newest run's machine; the table below dates every section.
    const m = results.reduce((a, b) => (a.machine.date >= b.machine.date ? a : b)).machine;
    lines.push('## Machine and versions', '', table(['', ''], [
      ['CPU', `${m.cpu} (${m.cores} cores)`], ['memory', `${m.memoryGiB} GiB`], ['node', m.node], ['etcd', m.etcd],
      ...Object.entries(m.versions).map(([name, version]) => [name, version]),
    ]), '', table(['benchmark', 'run at (UTC)', 'duration s', 'load avg (1 min) at start', 'goals'], results.map((r) => [
      r.benchmark, r.machine.date.replace('T', ' ').slice(0, 19), r.durationSec, r.details.loadAvgAtStart ?? '',
      r.goals.map((g) => (g.met ? 'met' : 'missed')).join(', '),
    ])), '');
  }
  for (const r of results) {
    const { chart, text } = await sections[r.benchmark](r);
    const file = `${CHARTS}/${r.benchmark}.svg`;
    writeFileSync(file, chart);
    written.push(file.replace(ROOT, ''));
    lines.push(`## ${TITLES[r.benchmark]}`, '', ...text.flatMap((t) => [t, '']), 'Goals:', '', goalsTable(r.goals), '',
      `![${r.benchmark}](charts/${r.benchmark}.svg)`, '');
    if (r.notes.length > 0) lines.push(...r.notes.map((n) => `- ${n}`), '');
    lines.push(`Raw result: \`docs/results/${r.benchmark}.json\` (run ${r.machine.date}).`, '');
  }
  writeFileSync(`${DOCS}/benchmarks.md`, lines.join('\n'));
  written.unshift('docs/benchmarks.md');
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log((await renderReport()).join('\n'));
}

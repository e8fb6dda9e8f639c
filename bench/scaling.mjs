// Renders docs/scaling.md: what a deployment far larger than this machine can run needs from etcd and from
// each client, and where it breaks first, computed from the per-unit costs the benchmarks measured
// (docs/results/*.json, the last recorded run of each) and etcd's documented limits (constants below, each
// with its source). The only numbers typed here are the scenario (the question) and those limits.
// Run at the end of `npm run bench`; `node bench/scaling.mjs` re-renders alone. A missing result leaves its
// rows out and says which benchmark would fill them.
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/common.mjs';
import { recordedResult } from './lib/recorded-results.mjs';

const OUT = `${ROOT}docs/scaling.md`;
const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** The deployment asked about (inputs, not measurements). */
const SCENARIO = {
  instances: 100_000,
  clients: 10_000,
  services: 1_000,
  servicesPerClient: 10,
  /** Worst case for leases: every instance is a process of its own (one lease, one etcd connection each). */
  instancesPerProcess: 1,
  /** Each record is replaced once a day (a daily deploy): a put and a deletion per instance per day. */
  restartsPerInstancePerDay: 1,
  /** A busy moment: a large rolling deploy. */
  peakChangesPerSec: 100,
  /** When clients and registrants connect through etcd gRPC proxies. */
  clientsPerProxy: 1_000,
};

/** etcd's documented limits and defaults. */
const LIMITS = {
  quotaBytes: { value: 2 * GiB, unit: 'bytes', what: 'default storage quota (--quota-backend-bytes)', source: 'https://etcd.io/docs/v3.4/dev-guide/limit/' },
  suggestedMaxQuotaBytes: { value: 8 * GiB, unit: 'bytes', what: 'suggested maximum storage quota', source: 'https://etcd.io/docs/v3.4/dev-guide/limit/' },
  maxRequestBytes: { value: 1.5 * MiB, unit: 'bytes', what: 'largest request (--max-request-bytes)', source: 'https://etcd.io/docs/v3.4/dev-guide/limit/' },
  clients: { value: 10_000, unit: '', what: 'clients etcd aims to support: O(10k)', source: 'https://etcd.io/docs/v3.4/benchmarks/etcd-3-watch-memory-benchmark/' },
  watchStreams: { value: 100_000, unit: '', what: 'watch streams etcd aims to support: O(100K)', source: 'https://etcd.io/docs/v3.4/benchmarks/etcd-3-watch-memory-benchmark/' },
  watchings: { value: 10_000_000, unit: '', what: 'watchings etcd aims to support: O(10M)', source: 'https://etcd.io/docs/v3.4/benchmarks/etcd-3-watch-memory-benchmark/' },
  heavyRequestsPerSec: { value: 10_000, unit: '/s', what: '"tens of thousands of requests per second" (low end): a heavy, CPU-bound deployment needing 8 to 16 dedicated cores', source: 'https://etcd.io/docs/v3.4/op-guide/hardware/' },
  typicalMemoryBytes: { value: 8 * GiB, unit: 'bytes', what: '"Typically 8GB is enough" of memory', source: 'https://etcd.io/docs/v3.4/op-guide/hardware/' },
  autoCompaction: { value: 0, unit: '', what: 'auto compaction is off by default (--auto-compaction-retention 0)', source: '`etcd --help`, etcd 3.4.23' },
};

/** A measured value with where it came from, or undefined when that result or field is missing. */
function measured(results, benchmark, path) {
  const result = results[benchmark];
  if (!result) return undefined;
  const value = path.split('.').reduce((node, key) => node?.[key], result);
  return typeof value === 'number' && Number.isFinite(value) ? { value, source: `${benchmark}.json \`${path}\``, date: result.machine?.date } : undefined;
}

const group = (n) => Math.round(n).toLocaleString('en-US');
function fmt(value, unit) {
  if (value === undefined) return 'n/a';
  if (unit === 'bytes') {
    const abs = Math.abs(value);
    if (abs >= GiB) return `${(value / GiB).toFixed(2)} GiB`;
    if (abs >= MiB) return `${(value / MiB).toFixed(1)} MiB`;
    if (abs >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
    return `${Math.round(value)} B`;
  }
  if (unit === 'bytes/s') return `${fmt(value, 'bytes')}/s`;
  if (unit === '/s') return `${fmt(value, '')}/s`;
  if (unit === 'x') return `${value >= 10 ? group(value) : value.toFixed(2)} x`;
  if (unit === '%') return `${(value * 100).toFixed(value < 0.01 ? 3 : 1)} %`;
  if (Math.abs(value) >= 100) return `${group(value)}${unit ? ` ${unit}` : ''}`;
  return `${Number(value.toPrecision(3))}${unit ? ` ${unit}` : ''}`;
}

const table = (header, rows) => [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** Every input the model uses: the per-unit costs, from the recorded results. */
function unitCosts(results) {
  const m = (benchmark, path) => measured(results, benchmark, path);
  const proxyClients = m('proxy', 'clients');
  const proxyServices = m('proxy', 'services');
  const directWatchers = m('proxy', 'directWatchers');
  const directSent = m('proxy', 'details.fanOut.etcdSentBytesPerChangeDirect');
  const derived = (value, ...inputs) => (inputs.every(Boolean) ? { value, source: inputs.map((i) => i.source).join(' / '), date: inputs[0].date } : undefined);
  return {
    recordBytes: m('registration', 'recordBytes') ?? m('proxy', 'details.storage.recordBytes'),
    dbBytesPerRecord: m('proxy', 'details.storage.dbInUseBytesPerRecord'),
    dbBytesPerDeletion: m('proxy', 'details.storage.dbInUseBytesPerDeletion'),
    etcdRssPerRecord: m('proxy', 'details.storage.etcdRssBytesPerRecord'),
    ttlSeconds: m('registration', 'ttlSeconds'),
    keepAlivesPerProcess: m('registration', 'keepAlivesPerSecPerProcess'),
    keepAlivesPerProcessPerInstanceLease: m('registration', 'keepAlivesPerSecPerProcessPerInstanceLease'),
    instancesPerProcessMeasured: m('registration', 'instancesPerProcess'),
    bytesInPerProcess: m('registration', 'etcdBytesInPerSecPerProcess'),
    bytesOutPerProcess: m('registration', 'details.summary.shared.etcdBytesOutPerSecPerProcess'),
    watchersPerFollowedService: derived(directWatchers && proxyClients && proxyServices && directWatchers.value / (proxyClients.value * proxyServices.value), directWatchers, proxyClients, proxyServices),
    scaleClientWatchers: m('scale', 'watchersUpstream'),
    scaleServices: m('scale', 'services'),
    registrantWatchersPerRecord: m('proxy', 'details.registrantWatchersPerRecord'),
    heapPerInstance: m('scale', 'heapBytesPerInstance'),
    clientProcessRss: m('proxy', 'details.followerRssBytesMedian'),
    bytesPerDeliveredEvent: derived(directSent && proxyClients && directSent.value / proxyClients.value, directSent, proxyClients),
    proxySentPerChange: m('proxy', 'details.fanOut.etcdSentBytesPerChangeViaProxy'),
    proxyUpstreamWatchers: m('proxy', 'upstreamWatchers'),
    proxyServices,
    proxyClients,
    proxyCpuMsPerEvent: m('proxy', 'details.fanOut.proxyCpuMsPerDeliveredEvent'),
    proxyRssPerClient: m('proxy', 'details.fanOut.proxyRssBytesPerClient'),
    proxyKeepAlivesPerLease: m('proxy', 'details.fanOut.etcdKeepAlivesPerSecPerLeaseViaProxy'),
    proxyRegistrantKeepAlivesPerLease: m('proxy', 'details.fanOut.registrantKeepAlivesPerSecPerLease'),
    proxyFrozenExpiryMs: m('proxy', 'details.leaseExpiry.proxyFrozenMs'),
    directFrozenExpiryMs: m('proxy', 'details.leaseExpiry.etcdFrozenMs'),
    proxyTtlSeconds: m('proxy', 'details.ttlSeconds'),
    subsetSize: m('routing', 'subsetSize'),
    subsetConnectionsPerClient: m('routing', 'subsetConnectionsPerClient'),
    subsetMaxOverAvgClients: m('routing', 'subsetMaxOverAvgClients'),
  };
}

/** A computed figure: undefined unless every input is present. */
const calc = (f, ...inputs) => (inputs.every((i) => i?.value !== undefined) ? f(...inputs.map((i) => i.value)) : undefined);
/** A figure computed here, as an input to another. */
const v = (value) => ({ value });

export async function renderScaling() {
  const results = Object.fromEntries(['registration', 'scale', 'routing', 'proxy'].map((name) => [name, recordedResult(name)]));
  const u = unitCosts(results);
  const s = SCENARIO;
  const processes = s.instances / s.instancesPerProcess;
  const instancesPerService = s.instances / s.services;
  const followersPerService = (s.clients * s.servicesPerClient) / s.services;
  const instancesFollowed = s.servicesPerClient * instancesPerService;
  const clientProxies = Math.ceil(s.clients / s.clientsPerProxy);
  const registrantProxies = Math.ceil(processes / s.clientsPerProxy);
  const proxies = clientProxies + registrantProxies;
  const missing = Object.entries(results).filter(([, r]) => !r).map(([name]) => name);

  // etcd, direct connections.
  const db = calc((b) => s.instances * b, u.dbBytesPerRecord);
  const churnPerDay = calc((put, del) => s.instances * s.restartsPerInstancePerDay * (put + del), u.dbBytesPerRecord, u.dbBytesPerDeletion);
  const daysToQuota = calc((used, perDay) => (LIMITS.quotaBytes.value - used) / perDay, v(db), v(churnPerDay));
  const etcdRss = calc((b) => s.instances * b, u.etcdRssPerRecord);
  // keepalives per process follow 3 / TTL: the measured rate at the measured TTL, scaled to any other TTL.
  const keepAlives = calc((k) => processes * k, u.keepAlivesPerProcess);
  const ttlForHeavy = calc((k, ttl) => Math.ceil((processes * k * ttl) / LIMITS.heavyRequestsPerSec.value), u.keepAlivesPerProcess, u.ttlSeconds);
  const writesPeak = s.peakChangesPerSec;
  const watchersPerClient = calc((w) => s.servicesPerClient * w, u.watchersPerFollowedService);
  const clientWatchers = calc((w) => s.clients * w, v(watchersPerClient));
  const registrantWatchers = calc((w) => s.instances * w, u.registrantWatchersPerRecord);
  const watchers = calc((c, r) => c + r, v(clientWatchers), v(registrantWatchers));
  const connections = processes + s.clients;
  const fanOutBytesPerSec = calc((b) => s.peakChangesPerSec * followersPerService * b, u.bytesPerDeliveredEvent);
  const keepAliveBytesIn = calc((b) => processes * b, u.bytesInPerProcess);
  const keepAliveBytesOut = calc((b) => processes * b, u.bytesOutPerProcess);
  const relistBytes = calc((b) => s.clients * instancesFollowed * b, u.recordBytes);

  // Through proxies (clients on their own proxies, registrants on others): etcd sees the proxies; a client
  // proxy shares one watcher per followed range among its clients; each record's own-key watch stays its own.
  const proxyWatchersPerService = calc((w, n) => w / n, u.proxyUpstreamWatchers, u.proxyServices);
  const proxiedClientWatchers = calc((w) => clientProxies * s.services * w, v(proxyWatchersPerService));
  const proxiedWatchers = calc((c, r) => c + r, v(proxiedClientWatchers), v(registrantWatchers));
  const proxiedKeepAlives = calc((k, reg, kProc) => processes * kProc * (k / reg), u.proxyKeepAlivesPerLease, u.proxyRegistrantKeepAlivesPerLease, u.keepAlivesPerProcess);
  const eventsPerChangeProxied = Math.min(clientProxies, followersPerService);
  const proxiedFanOut = calc((b) => s.peakChangesPerSec * eventsPerChangeProxied * b, u.proxySentPerChange);
  const proxyRss = calc((b) => s.clientsPerProxy * b, u.proxyRssPerClient);
  const proxyEventsPerSec = (s.peakChangesPerSec * followersPerService) / clientProxies;
  const proxyCpu = calc((ms) => proxyEventsPerSec * ms, u.proxyCpuMsPerEvent);

  // Each client.
  const heap = calc((b) => instancesFollowed * b, u.heapPerInstance);
  const heapAll = calc((b) => s.instances * b, u.heapPerInstance);
  const connectionsNoSubset = instancesFollowed;
  const connectionsSubset = calc((k) => s.servicesPerClient * Math.min(k, instancesPerService), u.subsetSize);
  const serverConnectionsSubset = calc((k) => followersPerService * (Math.min(k, instancesPerService) / instancesPerService), u.subsetSize);
  const serverConnectionsSubsetMax = calc((avg, f) => avg * f, v(serverConnectionsSubset), u.subsetMaxOverAvgClients);
  const relistPerClient = calc((b) => instancesFollowed * b, u.recordBytes);
  const scaleWatchersPerService = calc((w, n) => w / n, u.scaleClientWatchers, u.scaleServices);

  const src = (...inputs) => inputs.filter(Boolean).map((i) => i.source).join('; ') || 'scenario';
  const row = (what, value, unit, how, ...inputs) => [what, fmt(value, unit), how, src(...inputs)];

  const pressure = (what, value, limit, note = '') => (value === undefined ? undefined : { what, value, limit, share: value / limit.value, note });
  const dbAfterDay = calc((a, b) => a + b, v(db), v(churnPerDay));
  const direct = [
    pressure('connections to etcd (registrant processes + clients)', connections, LIMITS.clients),
    pressure('watch streams (one per connected process)', connections, LIMITS.watchStreams),
    pressure('watchers in etcd', watchers, LIMITS.watchings),
    pressure('keepalive requests/s', keepAlives, LIMITS.heavyRequestsPerSec, `TTL ${fmt(u.ttlSeconds?.value, 's')}`),
    pressure('db size (records, no history)', db, LIMITS.quotaBytes),
    pressure('db size after one day of churn, compaction off', dbAfterDay, LIMITS.quotaBytes),
    pressure('etcd memory for the records (RSS growth, coarse)', etcdRss, LIMITS.typicalMemoryBytes),
    pressure('one registration\'s request (its record)', u.recordBytes?.value, LIMITS.maxRequestBytes),
  ].filter(Boolean).sort((a, b) => b.share - a.share);
  const viaProxies = [
    pressure(`connections to etcd (${group(proxies)} proxies)`, proxies, LIMITS.clients),
    pressure('watchers in etcd', proxiedWatchers, LIMITS.watchings),
    pressure('keepalive requests/s (the proxies renew every lease)', proxiedKeepAlives, LIMITS.heavyRequestsPerSec, `TTL ${fmt(u.ttlSeconds?.value, 's')}`),
    pressure('db size after one day of churn, compaction off', dbAfterDay, LIMITS.quotaBytes),
  ].filter(Boolean).sort((a, b) => b.share - a.share);
  const pressureTable = (rows) => table(['what', 'needs', 'documented limit', 'share of the limit'], rows.map((p) => [
    `${p.what}${p.note ? ` (${p.note})` : ''}`, fmt(p.value, p.limit.unit), `${fmt(p.limit.value, p.limit.unit)}: ${p.limit.what}`, fmt(p.share, '%'),
  ]));

  const unitRows = [
    ['record (key + value)', u.recordBytes, 'bytes'],
    ['etcd db in use per record', u.dbBytesPerRecord, 'bytes'],
    ['etcd db in use per deletion (tombstone, until compacted)', u.dbBytesPerDeletion, 'bytes'],
    ['etcd RSS growth per record (coarse)', u.etcdRssPerRecord, 'bytes'],
    [`keepalive requests/s per registered process (TTL ${fmt(u.ttlSeconds?.value, 's')}, one lease for all its records)`, u.keepAlivesPerProcess, ''],
    [`the same with one lease per record (${fmt(u.instancesPerProcessMeasured?.value, '')} records per process)`, u.keepAlivesPerProcessPerInstanceLease, ''],
    ['etcd bytes in/s per registered process (keepalives)', u.bytesInPerProcess, 'bytes/s'],
    ['etcd bytes out/s per registered process (keepalive answers)', u.bytesOutPerProcess, 'bytes/s'],
    ['watchers in etcd per followed service, per-service watches', u.watchersPerFollowedService, ''],
    [`watchers in etcd for the scale benchmark's client following ${fmt(u.scaleServices?.value, '')} services`, u.scaleClientWatchers, ''],
    ['watchers in etcd per registered record (its own key, through the proxy too)', u.registrantWatchersPerRecord, ''],
    ['client heap per followed instance (per-service state included)', u.heapPerInstance, 'bytes'],
    ['client process RSS (Node + Nest + the library, following 10 services)', u.clientProcessRss, 'bytes'],
    ['etcd bytes sent per change per following client (direct)', u.bytesPerDeliveredEvent, 'bytes'],
    ['etcd bytes sent per change to one proxy (its clients share it)', u.proxySentPerChange, 'bytes'],
    [`watchers in etcd for ${fmt(u.proxyClients?.value, '')} clients x ${fmt(u.proxyServices?.value, '')} services through one proxy`, u.proxyUpstreamWatchers, ''],
    ['proxy CPU per event delivered to a client (ms)', u.proxyCpuMsPerEvent, ''],
    ['proxy RSS per connected client', u.proxyRssPerClient, 'bytes'],
    ['keepalive requests/s per lease reaching etcd through the proxy', u.proxyKeepAlivesPerLease, ''],
    [`a frozen registrant's key gone after (ms), TTL ${fmt(u.proxyTtlSeconds?.value, 's')}: behind the proxy`, u.proxyFrozenExpiryMs, ''],
    ['... connected to etcd directly (ms)', u.directFrozenExpiryMs, ''],
    ['subset size (connections per client per service with subsetting)', u.subsetSize, ''],
    ['connections per client measured with subsetting (channelz)', u.subsetConnectionsPerClient, ''],
    ['most clients on one instance / average, with subsetting', u.subsetMaxOverAvgClients, ''],
  ].map(([what, input, unit]) => [what, input ? fmt(input.value, unit) : 'n/a', input ? input.source : 'missing', input?.date ? input.date.slice(0, 10) : '']);

  const first = direct[0];
  const firstProxied = viaProxies[0];
  const lines = [
    '# Scaling: 100,000 instances, 10,000 clients',
    '',
    '<!-- Generated by bench/scaling.mjs from docs/results/*.json. Do not edit by hand. -->',
    '',
    'What a deployment much larger than the benchmarks needs from etcd and from each client, computed from the per-unit costs the ' +
      'benchmarks measured (their last recorded runs, `docs/results/*.json`; see [benchmarks.md](benchmarks.md)) and etcd\'s documented limits. ' +
      'The scenario below is the question; every other number is computed by `bench/scaling.mjs` (`npm run bench` runs it; `node bench/scaling.mjs` alone). ' +
      'Linear extrapolation from one-machine measurements: it finds orders of magnitude and the first wall, not exact capacities.',
    '',
    ...(missing.length > 0 ? [`Missing results (their rows show n/a or are left out): ${missing.map((name) => `\`npm run bench -- ${name}\``).join(', ')}.`, ''] : []),
    '## Scenario',
    '',
    table(['input', 'value'], [
      ['registered instances', group(s.instances)],
      ['services (instances each)', `${group(s.services)} (${group(instancesPerService)})`],
      ['instances per registering process', group(s.instancesPerProcess)],
      ['client processes', group(s.clients)],
      ['services each client follows and calls', group(s.servicesPerClient)],
      ['clients following each service', group(followersPerService)],
      ['record replacements per instance per day (deploys)', group(s.restartsPerInstancePerDay)],
      ['peak registry changes per second (a large rolling deploy)', group(s.peakChangesPerSec)],
      ['connected processes per gRPC proxy, when proxied', group(s.clientsPerProxy)],
    ]),
    '',
    '## Measured per-unit costs',
    '',
    table(['cost', 'measured', 'source', 'run'], unitRows),
    '',
    '## What etcd needs',
    '',
    table(['', 'needs', 'how', 'from'], [
      row('db in use for the records', db, 'bytes', 'instances x db bytes per record', u.dbBytesPerRecord),
      row('db growth per day of churn while compaction is off', churnPerDay, 'bytes', 'instances x replacements x (record + tombstone)', u.dbBytesPerRecord, u.dbBytesPerDeletion),
      row('days until the default 2 GiB quota, compaction off', daysToQuota, 'days', '(quota - records) / growth per day', u.dbBytesPerRecord, u.dbBytesPerDeletion),
      row('etcd memory for the records (coarse)', etcdRss, 'bytes', 'instances x RSS growth per record', u.etcdRssPerRecord),
      row('leases', processes, '', 'one per registering process', undefined),
      row('keepalive requests/s', keepAlives, '', `processes x measured rate (TTL ${fmt(u.ttlSeconds?.value, 's')})`, u.keepAlivesPerProcess),
      row(`TTL that keeps keepalives under ${group(LIMITS.heavyRequestsPerSec.value)}/s`, ttlForHeavy, 's', `processes x rate x TTL / ${group(LIMITS.heavyRequestsPerSec.value)}`, u.keepAlivesPerProcess, u.ttlSeconds),
      row('keepalive bandwidth in / out', keepAliveBytesIn, 'bytes/s', 'processes x bytes/s per process', u.bytesInPerProcess),
      row('... out', keepAliveBytesOut, 'bytes/s', 'processes x bytes/s per process', u.bytesOutPerProcess),
      row('writes/s at the peak', writesPeak, '', 'one put or delete per change', undefined),
      row('connections (and watch streams)', connections, '', 'registering processes + clients', undefined),
      row('watchers, direct', watchers, '', 'clients x services followed x watchers per service + records x own-key watchers', u.watchersPerFollowedService, u.registrantWatchersPerRecord),
      row('events etcd sends per change, direct', followersPerService, '', 'clients following the service', undefined),
      row('event bandwidth at the peak, direct', fanOutBytesPerSec, 'bytes/s', 'changes/s x followers x bytes per delivered event', u.bytesPerDeliveredEvent),
      row('relisting after an etcd restart (every client at once)', relistBytes, 'bytes', 'clients x instances followed x record bytes', u.recordBytes),
      row(`proxies: for clients + for registrants`, proxies, '', `${group(clientProxies)} + ${group(registrantProxies)} at ${group(s.clientsPerProxy)} connected processes each`, undefined),
      row('watchers through proxies', proxiedWatchers, '', 'client proxies x services x upstream watchers per service + records x own-key watchers', u.proxyUpstreamWatchers, u.proxyServices, u.registrantWatchersPerRecord),
      row('events etcd sends per change, through proxies', eventsPerChangeProxied, '', 'one per client proxy', undefined),
      row('event bandwidth at the peak, through proxies', proxiedFanOut, 'bytes/s', 'changes/s x client proxies x bytes per change per proxy', u.proxySentPerChange),
      row('keepalive requests/s, through proxies', proxiedKeepAlives, '', 'each lease still renewed upstream on its own', u.proxyKeepAlivesPerLease, u.proxyRegistrantKeepAlivesPerLease, u.keepAlivesPerProcess),
      row('each proxy: RSS for its connections', proxyRss, 'bytes', 'connected processes x RSS per client', u.proxyRssPerClient),
      row('each client proxy: CPU at the peak (ms/s)', proxyCpu, '', 'events it delivers/s x CPU per event', u.proxyCpuMsPerEvent),
    ]),
    '',
    '## What each client needs',
    '',
    table(['', 'needs', 'how', 'from'], [
      row('instances followed', instancesFollowed, '', 'services followed x instances per service', undefined),
      row('heap for the instance lists', heap, 'bytes', 'instances followed x heap per instance', u.heapPerInstance),
      row('heap if it followed every instance (a gateway)', heapAll, 'bytes', 'instances x heap per instance', u.heapPerInstance),
      row('process RSS besides (Node + Nest + the library)', u.clientProcessRss?.value, 'bytes', 'measured', u.clientProcessRss),
      row('watchers in etcd (per-service watches)', watchersPerClient, '', 'services followed x watchers per service', u.watchersPerFollowedService),
      row(`watchers per followed service as the scale benchmark's client follows ${fmt(u.scaleServices?.value, '')}`, scaleWatchersPerService, '', 'its watchers / its services', u.scaleClientWatchers, u.scaleServices),
      row('connections to instances, no subsetting', connectionsNoSubset, '', 'every instance of every service it calls', undefined),
      row('connections to instances, subsetting', connectionsSubset, '', 'services x subset size', u.subsetSize),
      row('connections each instance accepts, no subsetting', followersPerService, '', 'clients following its service', undefined),
      row('... subsetting, average', serverConnectionsSubset, '', 'followers x subset / instances', u.subsetSize),
      row('... subsetting, most', serverConnectionsSubsetMax, '', 'average x measured most/average', u.subsetSize, u.subsetMaxOverAvgClients),
      row('registry events per second at the peak', (s.peakChangesPerSec * s.servicesPerClient) / s.services, '', 'changes/s x its share of services', undefined),
      row('bytes to relist its services after a reconnect', relistPerClient, 'bytes', 'instances followed x record bytes', u.recordBytes),
    ]),
    '',
    '## Where it breaks first',
    '',
    'Each need against the documented limit it runs into (the O(...) figures are etcd\'s design targets, not hard limits; the request rate is where etcd\'s hardware guide calls a deployment heavy). Largest share first.',
    '',
    '**Every process connected to etcd directly:**',
    '',
    pressureTable(direct),
    '',
    ...(first ? [`First wall: **${first.what}** at ${fmt(first.share, '%')} of ${first.limit.what}.`, ''] : []),
    `**Through ${group(proxies)} gRPC proxies** (registrants and clients connect to a proxy; measured: a proxy shares one watcher per range among its clients and renews each lease upstream on its own schedule):`,
    '',
    pressureTable(viaProxies),
    '',
    ...(firstProxied ? [`First wall then: **${firstProxied.what}** at ${fmt(firstProxied.share, '%')} of ${firstProxied.limit.what}.`, ''] : []),
    '## Documented limits used',
    '',
    table(['limit', 'value', 'source'], Object.values(LIMITS).map((l) => [l.what, fmt(l.value, l.unit), l.source])),
    '',
  ];
  writeFileSync(OUT, lines.join('\n'));
  return ['docs/scaling.md'];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log((await renderScaling()).join('\n'));
}

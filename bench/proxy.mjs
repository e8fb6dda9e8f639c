// 7. proxy: many client processes following the same services through ONE `etcd grpc-proxy start`, which
// shares one upstream watch among the clients watching the same range. Services are registered through the
// proxy by the library (registrant processes, one lease each: leases and keepalives go through it too).
// Measured in the same run:
//   storage     what a registry record costs etcd: db bytes in use and etcd RSS per record (before the proxy)
//   leases      a registrant frozen (SIGSTOP) or killed behind the proxy vs. connected to etcd: signal -> key gone
//   etcdctl     six `etcdctl watch --prefix` through the proxy: watchers they add in etcd
//   clients     N follower processes (started in batches): watchers they add in etcd (etcd's own gauge)
//   changes     puts/deletes of records -> every client's list shows it, through the proxy; then the same
//               processes following etcd directly (the baseline), and a bare watcher on etcd
import { Etcd3 } from 'etcd3';
import { readFileSync } from 'node:fs';
import { ROOT, now, round, sleep, waitUntil } from './lib/common.mjs';
import { etcdCounters, metricSum, processCpuMs, scrapeMetrics, startBenchEtcd } from './lib/etcd.mjs';
import { etcdctlWatch, startGrpcProxy } from './lib/grpc-proxy.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { histogramOf, summarize } from './lib/hdr.mjs';
import { namingRecord } from './lib/naming-record.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';

const SERVICES = Number(process.env.BENCH_PROXY_SERVICES ?? 10);
/** Registrant processes through the proxy, each registering one instance of every service under its lease. */
const INSTANCES_PER_SERVICE = 3;
const CLIENTS = Number(process.env.BENCH_PROXY_CLIENTS ?? 50);
/** Followers starting at once: loading Nest and the library costs ~1.5 s of CPU, and the machine has 2 cores. */
const BATCH = 10;
const CHANGES = Number(process.env.BENCH_PROXY_CHANGES ?? 30);
const CHANGES_PER_SEC = 5;
/** Changes that add before adds and removals alternate (each added record lives ~POOL changes). */
const POOL = 4;
/** Short, so a frozen registrant's lease runs out soon; keepalives go every TTL/3. */
const TTL_SECONDS = 3;
const ETCDCTL_WATCHES = 6;
const STORAGE_RECORDS = Number(process.env.BENCH_PROXY_STORAGE_RECORDS ?? 2_000);
/** After the last change: a change no client list showed by then counts as missed. */
const SEEN_DEADLINE_MS = 3_000;
const NAMESPACE = '/services';
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;
const FOLLOWER = `${ROOT}bench/children/proxy-follower.mjs`;

const watcherGauge = async (etcd) => metricSum(await scrapeMetrics(etcd.endpoint), 'etcd_debugging_mvcc_watcher_total');

/** etcd's watcher gauge once it held still for `stableMs` (the proxy merges new upstream watches a moment later). */
async function settledWatchers(etcd, stableMs = 1_500, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let value = await watcherGauge(etcd);
  let since = Date.now();
  while (Date.now() - since < stableMs && Date.now() < deadline) {
    await sleep(200);
    const next = await watcherGauge(etcd);
    if (next !== value) {
      value = next;
      since = Date.now();
    }
  }
  return value;
}

function rssBytes(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return NaN;
  }
}

async function startRegistrant(name, hosts, services, portBase) {
  const child = forkChild(name, REGISTRANT);
  await child.waitFor((message) => message?.ready, 30_000, 'ready');
  // etcd 3.4's proxy closes connections pinging more than once per 5 minutes.
  await child.request('init', { hosts, namespace: NAMESPACE, ttlSeconds: TTL_SECONDS, keepaliveIntervalMs: 300_000 });
  await child.request('registerMany', { mode: 'shared', services, portBase }, 30_000);
  return child;
}

/** STORAGE_RECORDS records in the library's format written to etcd (one put each, one lease): etcd's cost per record. */
async function measureStorage(etcd) {
  const client = new Etcd3({ hosts: [etcd.endpoint] });
  try {
    const lease = client.lease(600);
    await lease.grant();
    const before = await etcdCounters(etcd);
    const rssBefore = rssBytes(etcd.pid);
    let recordBytes = 0;
    for (let i = 0; i < STORAGE_RECORDS; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, STORAGE_RECORDS - i) }, (_, j) => {
        const key = `/bench-storage/svc-${String((i + j) % 100).padStart(3, '0')}/host-${i + j}-0123abcd`;
        const value = namingRecord({ host: '127.0.0.1', port: 20_000 + ((i + j) % 40_000) }, { version: '1.0.0', zone: 'local' });
        recordBytes += Buffer.byteLength(key) + Buffer.byteLength(value);
        return lease.put(key).value(value).exec();
      }));
    }
    // The backend commits every 100 ms; the in-use gauge follows the commit.
    await sleep(1_000);
    const after = await etcdCounters(etcd);
    const rssAfter = rssBytes(etcd.pid);
    // Revoking deletes every record: a tombstone revision each, kept (like the puts) until a compaction.
    await lease.revoke();
    await sleep(1_000);
    const revoked = await etcdCounters(etcd);
    return {
      records: STORAGE_RECORDS,
      recordBytes: round(recordBytes / STORAGE_RECORDS, 1),
      dbInUseBytesPerRecord: round((after.dbInUseBytes - before.dbInUseBytes) / STORAGE_RECORDS, 1),
      etcdRssBytesPerRecord: round((rssAfter - rssBefore) / STORAGE_RECORDS, 1),
      dbInUseBytesPerDeletion: round((revoked.dbInUseBytes - after.dbInUseBytes) / STORAGE_RECORDS, 1),
      keysAdded: after.keys - before.keys,
      etcdBytesInPerRecord: round((after.receivedBytes - before.receivedBytes) / STORAGE_RECORDS, 1),
    };
  } finally {
    client.close();
  }
}

/**
 * Four registrants with one record each, for measureLeaseExpiry: behind the proxy and on etcd directly, one
 * of each to be frozen (SIGSTOP: its connection stays open) and one to be killed (its connection closes).
 */
async function startVictims(etcd, proxy) {
  const cases = [['proxy', proxy.endpoint, 'SIGSTOP'], ['proxy', proxy.endpoint, 'SIGKILL'], ['etcd', etcd.endpoint, 'SIGSTOP'], ['etcd', etcd.endpoint, 'SIGKILL']]
    .map(([via, host, signal], k) => ({ via, host, signal, service: `victim-${via}-${signal.toLowerCase()}`, port: 29_000 + k }));
  return { cases, victims: await Promise.all(cases.map((c) => startRegistrant(c.service, [c.host], [c.service], c.port))) };
}

/** Signals the victims at once; time from the signal to each one's key deleted in etcd (a bare watcher on etcd). */
async function measureLeaseExpiry(etcd, { cases, victims }) {
  const watchClient = new Etcd3({ hosts: [etcd.endpoint] });
  const watcher = await watchClient.watch().prefix(`${NAMESPACE}/victim-`).create();
  const deletedAt = new Map();
  watcher.on('delete', (kv) => deletedAt.set(kv.key.toString().split('/')[2], now()));
  try {
    // Let a few keepalives go through first.
    await sleep(TTL_SECONDS * 1_000);
    const signalledAt = now();
    for (const victim of victims) process.kill(victim.pid, cases[victims.indexOf(victim)].signal);
    await waitUntil(() => cases.every((c) => deletedAt.has(c.service)), TTL_SECONDS * 6_000, 'every victim record to expire', 50).catch(() => undefined);
    await Promise.all(victims.map((victim) => victim.stop(1_000, 'SIGKILL')));
    return Object.fromEntries(cases.map((c) => [`${c.via}${c.signal === 'SIGSTOP' ? 'Frozen' : 'Killed'}Ms`,
      deletedAt.has(c.service) ? round(deletedAt.get(c.service) - signalledAt, 0) : null]));
  } finally {
    await watcher.cancel().catch(() => undefined);
    watchClient.close();
  }
}

/** Six etcdctl watches of one prefix through the proxy, each seen receiving an event: watchers they add in etcd. */
async function measureEtcdctlWatches(etcd, proxy) {
  const before = await settledWatchers(etcd, 500);
  const watches = Array.from({ length: ETCDCTL_WATCHES }, (_, i) => etcdctlWatch(proxy.endpoint, '/etcdctl-check/', `etcdctl-watch-${i}`));
  const client = new Etcd3({ hosts: [etcd.endpoint] });
  try {
    await sleep(1_000);
    // Each watch shows this event once it is live.
    await client.put('/etcdctl-check/probe').value('1');
    await Promise.all(watches.map((watch) => watch.waitForOutput(/\/etcdctl-check\/probe/, 10_000)));
    const during = await settledWatchers(etcd);
    return { watches: ETCDCTL_WATCHES, upstreamWatchers: during - before };
  } finally {
    await Promise.all(watches.map((watch) => watch.stop(2_000)));
    await client.delete().key('/etcdctl-check/probe').catch(() => undefined);
    client.close();
  }
}

/**
 * CHANGES writes at CHANGES_PER_SEC, straight to etcd: records added (library format) until POOL exist,
 * then removals of the oldest and additions in turn, rotating over the services. Every client reports
 * when its list of that service first showed the change; a bare etcd3 watcher on etcd is the floor.
 */
async function runChanges(etcd, clients, stage, services) {
  const writer = new Etcd3({ hosts: [etcd.endpoint] });
  const rawClient = new Etcd3({ hosts: [etcd.endpoint] });
  const lease = writer.lease(120);
  const rawWatcher = await rawClient.watch().prefix(`${NAMESPACE}/`).create();
  const rawSeen = new Map();
  rawWatcher.on('put', (kv) => rawSeen.set(`add ${kv.key}`, now()));
  rawWatcher.on('delete', (kv) => rawSeen.set(`remove ${kv.key}`, now()));
  const changes = [];
  const added = [];
  const counters0 = await etcdCounters(etcd);
  try {
    await lease.grant();
    const startedAt = now();
    const writes = [];
    for (let i = 0; i < CHANGES; i++) {
      const due = startedAt + (i * 1000) / CHANGES_PER_SEC;
      while (now() < due) await sleep(Math.max(0, Math.min(5, due - now())));
      if (added.length < POOL || i % 2 === 0) {
        const service = services[i % services.length];
        const key = `${NAMESPACE}/${service}/change-${stage}-${i}`;
        const change = { type: 'add', key, at: now() };
        writes.push(lease.put(key).value(namingRecord({ host: '127.0.0.1', port: 31_000 + i }, { version: '1.0.0', zone: 'local' })).exec());
        added.push(change);
        changes.push(change);
      } else {
        const { key } = added.shift();
        const change = { type: 'remove', key, at: now() };
        writes.push(writer.delete().key(key).exec());
        changes.push(change);
      }
    }
    await Promise.all(writes);
    await sleep(SEEN_DEADLINE_MS);
    const counters1 = await etcdCounters(etcd);
    // Leave the services as they were: the records still added go.
    await Promise.all(added.map(({ key }) => writer.delete().key(key).exec()));
    const reports = await Promise.all(clients.map((client) => client.request('seen', {}, 30_000)));
    const lags = [];
    const everyClient = [];
    let missed = 0;
    for (const change of changes) {
      let slowest = 0;
      for (const report of reports) {
        const seen = report.contexts[stage];
        const at = (change.type === 'add' ? seen.appeared : seen.left)[change.key];
        if (at === undefined) {
          missed += 1;
          continue;
        }
        lags.push(at - change.at);
        slowest = Math.max(slowest, at - change.at);
      }
      everyClient.push(slowest);
    }
    const raw = changes.map((c) => rawSeen.get(`${c.type} ${c.key}`) - c.at).filter(Number.isFinite);
    const problems = reports.reduce((sum, r) => sum + r.contexts[stage].problems.count + r.contexts[stage].listErrors, 0);
    const problemReasons = {};
    for (const r of reports) {
      for (const [reason, n] of Object.entries(r.contexts[stage].problems.reasons)) problemReasons[reason] = (problemReasons[reason] ?? 0) + n;
    }
    const clientsWithProblems = reports.filter((r) => r.contexts[stage].problems.count > 0).length;
    return {
      changes: changes.length,
      samples: lags.length,
      missed,
      problems,
      problemReasons,
      clientsWithProblems,
      problemSamples: reports.flatMap((r) => r.contexts[stage].problems.first).slice(0, 5),
      lag: summarize(histogramOf(lags)),
      everyClient: summarize(histogramOf(everyClient)),
      rawLag: summarize(histogramOf(raw)),
      etcdSentBytesPerChange: round((counters1.sentBytes - counters0.sentBytes) / changes.length, 0),
      etcdKeepAlivesPerSec: round((counters1.keepAliveRequests - counters0.keepAliveRequests) / ((counters1.at - counters0.at) / 1000), 3),
      followerRssBytes: reports.map((r) => r.rssBytes),
    };
  } finally {
    await rawWatcher.cancel().catch(() => undefined);
    await lease.revoke().catch(() => undefined);
    writer.close();
    rawClient.close();
  }
}

/** Starts the followers, at most BATCH starting at a time, each following every service through `hosts`. */
async function startFollowers(hosts, services) {
  const clients = [];
  const startMs = [];
  const startCpuMs = [];
  let next = 0;
  const starter = async () => {
    while (next < CLIENTS) {
      const child = forkChild(`follower-${next++}`, FOLLOWER, {
        args: [JSON.stringify({ namespace: NAMESPACE, services, perService: INSTANCES_PER_SERVICE, hosts })],
      });
      clients.push(child);
      const following = await child.waitFor((message) => message?.following, 120_000, 'following every service');
      startMs.push(following.ms);
      startCpuMs.push(following.cpuMs);
    }
  };
  await Promise.all(Array.from({ length: BATCH }, starter));
  return { clients, startMs, startCpuMs };
}

await runBenchmark('proxy', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());
  const services = Array.from({ length: SERVICES }, (_, k) => `svc-${String(k).padStart(2, '0')}`);
  const phaseSeconds = {};
  let phaseStart = Date.now();
  const phase = (name) => {
    phaseSeconds[name] = round((Date.now() - phaseStart) / 1000, 1);
    phaseStart = Date.now();
  };

  const storage = await measureStorage(etcd);
  printTable('proxy: what one record costs etcd', storage);
  phase('storage');

  const proxy = await startGrpcProxy(etcd);
  ctx.defer(() => proxy.stop());
  console.log(`grpc-proxy pid ${proxy.pid}: etcd ${proxy.args.join(' ')}`);

  const watchersBeforeRegistrants = await settledWatchers(etcd, 500);
  const [registrants, victims] = await Promise.all([
    Promise.all(Array.from({ length: INSTANCES_PER_SERVICE }, (_, p) => startRegistrant(`registrant-${p}`, [proxy.endpoint], services, 20_000 + p * SERVICES))),
    startVictims(etcd, proxy),
  ]);
  // Each record's registration watches its own key (to notice it deleted or replaced): distinct keys, so the proxy cannot share them.
  const records = SERVICES * INSTANCES_PER_SERVICE + victims.cases.length;
  const registrantWatchersPerRecord = round(((await settledWatchers(etcd)) - watchersBeforeRegistrants) / records, 3);
  phase('proxyAndRegistrants');
  const leaseExpiry = await measureLeaseExpiry(etcd, victims);
  printTable(`proxy: signal -> the registrant's key deleted by etcd (ms), TTL ${TTL_SECONDS} s`, leaseExpiry);
  phase('leaseExpiry');

  const etcdctl = await measureEtcdctlWatches(etcd, proxy);
  console.log(`${etcdctl.watches} etcdctl watches through the proxy added ${etcdctl.upstreamWatchers} watcher(s) in etcd`);
  phase('etcdctl');

  // The clients, through the proxy.
  const watchersBefore = await settledWatchers(etcd);
  const proxyRssBefore = rssBytes(proxy.pid);
  const { clients, startMs, startCpuMs } = await startFollowers([proxy.endpoint], services);
  const watchersAfter = await settledWatchers(etcd);
  const upstreamWatchers = watchersAfter - watchersBefore;
  const proxyRssAfter = rssBytes(proxy.pid);
  // The proxy's own CPU with the clients connected and nothing changing (keepalives, HTTP/2 pings).
  const idleCpu0 = processCpuMs(proxy.pid);
  const idleStart = Date.now();
  await sleep(2_000);
  const proxyIdleCpuMsPerSec = (processCpuMs(proxy.pid) - idleCpu0) / ((Date.now() - idleStart) / 1000);
  console.log(`${clients.length} clients following ${SERVICES} services through the proxy: ${upstreamWatchers} watcher(s) added in etcd`);
  phase('clientsStart');

  const proxyCpu0 = processCpuMs(proxy.pid);
  const changesStart = Date.now();
  const viaProxy = await runChanges(etcd, clients, 'proxy', services);
  const proxyCpuMs = processCpuMs(proxy.pid) - proxyCpu0 - proxyIdleCpuMsPerSec * ((Date.now() - changesStart) / 1000);
  phase('changesViaProxy');

  // grpc-js reports on stderr when a server closed the connection for pinging too often (HTTP/2 GOAWAY too_many_pings).
  const clientsRejectedForPings = clients.filter((client) => /excess pings/.test(client.text)).length;

  // The baseline: the same processes following etcd directly (the proxied contexts closed first).
  await Promise.all(clients.map((client) => client.request('unfollow', { name: 'proxy' }, 30_000)));
  const watchersUnfollowed = await settledWatchers(etcd);
  for (let i = 0; i < clients.length; i += BATCH) {
    await Promise.all(clients.slice(i, i + BATCH).map((client) => client.request('follow', { name: 'etcd', hosts: [etcd.endpoint] }, 60_000)));
  }
  const directWatchers = (await settledWatchers(etcd)) - watchersUnfollowed;
  phase('switchToDirect');
  const direct = await runChanges(etcd, clients, 'etcd', services);
  phase('changesDirect');

  const probe = new Etcd3({ hosts: [etcd.endpoint] });
  const recordsAtEnd = (await probe.getAll().prefix(`${NAMESPACE}/svc-`).keys()).filter((key) => !key.includes('/change-')).length;
  probe.close();
  const stillRegistered = (await Promise.all(registrants.map((r) => r.request('stats')))).every((s) => s.registered);

  const headline = {
    clients: clients.length,
    services: SERVICES,
    upstreamWatchers,
    propagationP99Ms: viaProxy.lag.p99,
    failedCalls: viaProxy.problems,
    etcdctlWatchesUpstreamWatchers: etcdctl.upstreamWatchers,
    directWatchers,
    directPropagationP99Ms: direct.lag.p99,
    rawWatchP99Ms: viaProxy.rawLag.p99,
    propagationP50Ms: viaProxy.lag.p50,
    missedChanges: viaProxy.missed,
  };
  printTable('proxy: write -> seen (ms)', {
    'through the proxy (every client x change)': viaProxy.lag,
    'through the proxy (slowest client per change)': viaProxy.everyClient,
    'direct to etcd (every client x change)': direct.lag,
    'bare etcd3 watcher on etcd': viaProxy.rawLag,
  });
  printTable('proxy: figures', headline);

  const downstreamWatchers = clients.length * SERVICES;
  writeResult('proxy', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal(`upstreamWatchers <= services (${SERVICES})`, upstreamWatchers, '<=', SERVICES),
      goal('clients >= 50', clients.length, '>=', 50),
      goal(`${ETCDCTL_WATCHES} etcdctl watch --prefix through one proxy add one watcher in etcd`, etcdctl.upstreamWatchers, '==', 1),
      goal('every change seen by every client through the proxy', viaProxy.missed, '==', 0),
      goal('list/watch errors and warnings in the clients (failedCalls)', viaProxy.problems, '==', 0),
      goal('records registered through the proxy still there at the end (leases kept alive)', recordsAtEnd, '==', SERVICES * INSTANCES_PER_SERVICE),
    ],
    notes: [
      `Clients: ${clients.length} processes, each a Nest application context with EtcdDiscoveryModule.forRoot({ etcd: { hosts: [proxy] } }) following ${SERVICES} services through ClientFactory.instances() (no channels, no calls), at most ${BATCH} starting at a time.`,
      `upstreamWatchers: etcd's etcd_debugging_mvcc_watcher_total (scraped from etcd, settled) after the clients follow, less its value before they start; the same processes following etcd directly added ${directWatchers} (directWatchers).`,
      `failedCalls: the clients make no calls; it counts list/watch errors: errors of the instance Observables plus warnings/errors the library logged in the clients (a watch that ended, a list that failed) while following through the proxy. ${viaProxy.missed} of ${viaProxy.changes * clients.length} change x client pairs never showed. By reason: ${Object.entries(viaProxy.problemReasons).map(([reason, n]) => `${n} x "${reason}"`).join(', ') || 'none'} (${viaProxy.clientsWithProblems} of ${clients.length} clients; grpc-js logged "rejected by server because of excess pings" in ${clientsRejectedForPings}); following etcd directly: ${direct.problems}.`,
      `Registrations: ${INSTANCES_PER_SERVICE} registrant processes register one instance of every service through the proxy (one lease each, TTL ${TTL_SECONDS} s): ${recordsAtEnd} of ${SERVICES * INSTANCES_PER_SERVICE} records still in etcd after ${round((Date.now() - ctx.startedAt) / 1000, 0)} s; every registration ${stillRegistered ? 'still registered' : 'NOT registered'}.`,
      `Lease expiry (signal -> key deleted, TTL ${TTL_SECONDS} s): frozen (SIGSTOP) behind the proxy ${leaseExpiry.proxyFrozenMs} ms vs on etcd ${leaseExpiry.etcdFrozenMs} ms; killed behind the proxy ${leaseExpiry.proxyKilledMs} ms vs on etcd ${leaseExpiry.etcdKilledMs} ms. The proxy renews a lease on its own schedule for as long as a keepalive came in within the last TTL.`,
      `Changes: ${CHANGES} at ${CHANGES_PER_SEC}/s written to etcd directly, seen through the proxy; then the same through direct connections. Each lag is write -> that client's list of the service showed it (one machine-wide monotonic clock).`,
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      ttlSeconds: TTL_SECONDS,
      instancesPerService: INSTANCES_PER_SERVICE,
      proxyArgs: proxy.args,
      storage,
      phaseSeconds,
      leaseExpiry,
      etcdctl,
      clientStartMs: summarize(histogramOf(startMs)),
      clientStartCpuMs: summarize(histogramOf(startCpuMs)),
      fanOut: {
        downstreamWatchers,
        upstreamWatchers,
        watchersPerUpstream: round(downstreamWatchers / Math.max(1, upstreamWatchers), 1),
        proxyRssBytesPerClient: round((proxyRssAfter - proxyRssBefore) / clients.length, 0),
        proxyCpuMsPerDeliveredEvent: round(Math.max(0, proxyCpuMs) / Math.max(1, viaProxy.samples), 4),
        proxyIdleCpuMsPerSec: round(proxyIdleCpuMsPerSec, 2),
        etcdSentBytesPerChangeViaProxy: viaProxy.etcdSentBytesPerChange,
        etcdSentBytesPerChangeDirect: direct.etcdSentBytesPerChange,
        // Only the registrants' leases are kept alive through the proxy meanwhile (the writer's 120 s lease: one per 40 s).
        etcdKeepAlivesPerSecPerLeaseViaProxy: round(viaProxy.etcdKeepAlivesPerSec / INSTANCES_PER_SERVICE, 3),
        registrantKeepAlivesPerSecPerLease: round(3 / TTL_SECONDS, 3),
      },
      followerRssBytesMedian: [...viaProxy.followerRssBytes].sort((a, b) => a - b)[viaProxy.followerRssBytes.length >> 1],
      viaProxy: { ...viaProxy, followerRssBytes: undefined },
      direct: { ...direct, followerRssBytes: undefined },
      recordsAtEnd,
      stillRegistered,
      registrantWatchersPerRecord,
      clientsRejectedForPings,
    },
  });
});

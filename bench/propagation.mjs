// 2. propagation: how fast a new or removed instance shows up. A client (this process, ClientFactory,
// round_robin) under steady load on two base instances (own process); in another process the library's
// library's EtcdRegistration registers a fresh instance (a real grpc-js server), and removes it once it has served, 50 times. Timed in
// that process on its own clock: register() (lease grant + create-only put) -> first call its server receives; withdrawal (lease
// revoke) -> last call it receives.
// Interleaved in the same run, in this process (as loaded as the discovery watch): raw etcd put -> event
// latency seen by a bare etcd3 watcher.
import { credentials } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { GreeterClient } from './lib/greeter-server.mjs';
import { ROOT, now, round, withTimeout } from './lib/common.mjs';
import { createDiscoveryContext, discoveredGreeter, sayHello, steadyLoad } from './lib/client.mjs';
import { startBenchEtcd } from './lib/etcd.mjs';
import { histogramOf, summarize } from './lib/hdr.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';
import { filter, firstValueFrom } from 'rxjs';

const CYCLES = Number(process.env.BENCH_PROPAGATION_CYCLES ?? 50);
const WARMUP_CYCLES = 2;
const RAW_PER_CYCLE = 2;
const RATE_PER_SEC = Number(process.env.BENCH_PROPAGATION_RATE ?? 1_000);
const BASE_INSTANCES = 2;
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;
const RAW_PREFIX = '/bench-raw/';

await runBenchmark('propagation', async (ctx) => {
  const etcd = await startBenchEtcd();
  ctx.defer(() => etcd.destroy());

  // The base instances (always there, taking the load) and the instances that come and go live in two
  // separate processes: a new instance's process is not busy serving when it registers.
  const base = forkChild('base-servers', REGISTRANT);
  const registrant = forkChild('registrant', REGISTRANT);
  for (const child of [base, registrant]) {
    await child.waitFor((message) => message?.ready, 15_000, 'ready');
    await child.request('init', { hosts: [etcd.endpoint] });
  }
  await base.request('serve', { count: BASE_INSTANCES });

  const { app, factory } = await createDiscoveryContext({ hosts: [etcd.endpoint] });
  ctx.defer(() => app.close());
  await withTimeout(firstValueFrom(factory.instances('greeter').pipe(filter((l) => l.length === BASE_INSTANCES))), 15_000, 'base instances');
  const greeter = await discoveredGreeter(factory);

  // Raw baseline: a bare etcd3 watcher and a separate etcd3 client writing.
  const rawWatchClient = new Etcd3({ hosts: etcd.endpoint });
  const rawWriteClient = new Etcd3({ hosts: etcd.endpoint });
  ctx.defer(() => { rawWatchClient.close(); rawWriteClient.close(); });
  const rawWatcher = await rawWatchClient.watch().prefix(RAW_PREFIX).create();
  ctx.defer(() => rawWatcher.cancel());
  const rawWaiting = new Map();
  rawWatcher.on('put', (kv) => rawWaiting.get(kv.key.toString())?.(now()));
  let rawSeq = 0;
  const rawSample = async () => {
    const key = `${RAW_PREFIX}${rawSeq++}`;
    const seen = new Promise((resolve) => rawWaiting.set(key, resolve));
    const t0 = now();
    await rawWriteClient.put(key).value(JSON.stringify({ Addr: '127.0.0.1:1', Metadata: { version: '1.0.0' } }));
    const at = await withTimeout(seen, 5_000, `raw watch event for ${key}`);
    rawWaiting.delete(key);
    return at - t0;
  };

  // Where the time goes, seen from this process: a bare watcher on the service prefix (the registrar's own
  // writes) and ClientFactory's instance list, both timed on the machine-wide monotonic clock.
  const seen = new Map(); // address -> { watchPut, watchDelete, listed, unlisted }
  const mark = (address, field) => {
    const entry = seen.get(address) ?? {};
    entry[field] ??= now();
    seen.set(address, entry);
  };
  const keyAddress = new Map();
  const serviceWatcher = await rawWatchClient.watch().prefix('/services/greeter/').create();
  ctx.defer(() => serviceWatcher.cancel());
  serviceWatcher.on('put', (kv) => {
    const address = JSON.parse(kv.value.toString()).Addr;
    keyAddress.set(kv.key.toString(), address);
    mark(address, 'watchPut');
  });
  serviceWatcher.on('delete', (kv) => {
    const address = keyAddress.get(kv.key.toString());
    if (address) mark(address, 'watchDelete');
  });
  let listed = new Set();
  const listSubscription = factory.instances('greeter').subscribe((list) => {
    const next = new Set(list.map((instance) => instance.address));
    for (const address of next) if (!listed.has(address)) mark(address, 'listed');
    for (const address of listed) if (!next.has(address)) mark(address, 'unlisted');
    listed = next;
  });
  ctx.defer(() => listSubscription.unsubscribe());

  // Floor for "a new instance gets its first call": a fresh grpc-js channel dialling a fresh server in the
  // same registering process, under the same load: connect, HTTP/2 handshake, one call received.
  const connectSample = async () => {
    const { address } = await registrant.request('probeServer');
    const t0 = now();
    const client = new GreeterClient(address, credentials.createInsecure());
    await new Promise((resolve, reject) => client.sayHello({ name: 'probe' }, (error) => (error ? reject(error) : resolve())));
    client.close();
    const { firstCallAt } = await registrant.request('probeDone', { address });
    return firstCallAt - t0;
  };

  const load = steadyLoad({ ratePerSec: RATE_PER_SEC, call: () => sayHello(greeter) });
  let loadStopped = false;
  ctx.defer(() => (loadStopped ? undefined : load.stop()));

  for (let i = 0; i < WARMUP_CYCLES; i++) {
    await registrant.request('cycle', {}, 20_000);
    await rawSample();
  }
  const cycles = [];
  const raw = [];
  const connects = [];
  for (let i = 0; i < CYCLES; i++) {
    cycles.push(await registrant.request('cycle', {}, 20_000));
    for (let k = 0; k < RAW_PER_CYCLE; k++) raw.push(await rawSample());
    connects.push(await connectSample());
    if ((i + 1) % 10 === 0) console.log(`cycle ${i + 1}/${CYCLES}: add ${cycles.at(-1).addMs.toFixed(2)} ms, remove ${cycles.at(-1).removeMs.toFixed(2)} ms, raw ${raw.at(-1).toFixed(2)} ms`);
  }
  const loadResult = await load.stop();
  loadStopped = true;

  const stage = (field, from) => cycles.map((c) => (seen.get(c.address)?.[field] ?? NaN) - c.at[from]).filter(Number.isFinite);
  const breakdown = {
    'put -> bare watch event (registrar write)': summarize(histogramOf(stage('watchPut', 'register'))),
    'put -> ClientFactory list': summarize(histogramOf(stage('listed', 'register'))),
    'list -> first call served': summarize(histogramOf(cycles.map((c) => c.at.firstCall - (seen.get(c.address)?.listed ?? NaN)).filter(Number.isFinite))),
    'floor: fresh channel dials fresh server -> first call served': summarize(histogramOf(connects)),
    'delete -> bare watch event': summarize(histogramOf(stage('watchDelete', 'remove'))),
    'delete -> ClientFactory list': summarize(histogramOf(stage('unlisted', 'remove'))),
  };
  printTable('propagation: where the add/remove time goes (ms)', breakdown);
  const add = summarize(histogramOf(cycles.map((c) => c.addMs)));
  // A removal whose last call came before the delete was written counts as 0 ms.
  const remove = summarize(histogramOf(cycles.map((c) => Math.max(0, c.removeMs))));
  const rawWatch = summarize(histogramOf(raw));
  const registerAck = summarize(histogramOf(cycles.map((c) => c.registerAckMs)));
  const removeAck = summarize(histogramOf(cycles.map((c) => c.removeAckMs)));
  const table = { 'add: put -> first call served': add, 'remove: delete -> last call served': remove, 'raw: put -> bare watch event': rawWatch,
    'registrar put acknowledged': registerAck, 'registrar delete+revoke acknowledged': removeAck };
  printTable(`propagation: ${CYCLES} adds and removals under ${RATE_PER_SEC} calls/s; ${raw.length} raw samples (ms)`, table);
  console.log(`load: ${loadResult.completed} calls, ${loadResult.failed} failed, ${loadResult.dropped} skipped${loadResult.errors.length ? `; errors: ${loadResult.errors.join(' | ')}` : ''}`);

  const floor = breakdown['floor: fresh channel dials fresh server -> first call served'];
  const watchPath = breakdown['put -> ClientFactory list'];
  const analysis = [];
  if (add.p99 > rawWatch.p99 + 10) {
    analysis.push(
      `Where the add time goes (p50): registrar write -> bare watch event ${breakdown['put -> bare watch event (registrar write)'].p50} ms, ` +
        `-> ClientFactory list ${watchPath.p50} ms (the library's watch path adds the difference), list -> first call served ` +
        `${breakdown['list -> first call served'].p50} ms, against a floor of ${floor.p50} ms (p99 ${floor.p99} ms) for a fresh channel to dial a fresh server and have its first call received.`,
    );
  }
  const headline = { addP50Ms: add.p50, addP99Ms: add.p99, removeP99Ms: remove.p99, rawWatchP99Ms: rawWatch.p99 };
  writeResult('propagation', {
    startedAt: ctx.startedAt,
    headline: { ...headline, removeP50Ms: remove.p50, rawWatchP50Ms: rawWatch.p50, connectFloorP50Ms: breakdown['floor: fresh channel dials fresh server -> first call served'].p50,
      connectFloorP99Ms: breakdown['floor: fresh channel dials fresh server -> first call served'].p99, addOverRawP99Ms: round(add.p99 - rawWatch.p99, 3), failedCalls: loadResult.failed },
    goals: [goal('addP99Ms <= rawWatchP99Ms + 10', add.p99, '<=', round(rawWatch.p99 + 10, 3)), goal('no call failed during the churn', loadResult.failed, '==', 0)],
    notes: [
      ...analysis,
      'add/remove are timed in the registering process: its EtcdRegistration.register() (lease grant + create-only put, on an open etcd connection) or withdraw() (lease revoke) vs its own server receiving calls.',
      'raw: etcd put from one etcd3 client -> event on a bare etcd3 watcher, in the loaded client process, interleaved with the cycles.',
      `removeMs < 0 (last call before the delete was written) counts as 0; ${cycles.filter((c) => c.removeMs < 0).length} of ${CYCLES}.`,
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      ratePerSec: RATE_PER_SEC,
      baseInstances: BASE_INSTANCES,
      summaries: table,
      breakdown,
      load: { ...loadResult, seconds: round(loadResult.seconds, 1) },
      samples: { addMs: cycles.map((c) => round(c.addMs, 3)), removeMs: cycles.map((c) => round(c.removeMs, 3)), rawWatchMs: raw.map((v) => round(v, 3)), connectFloorMs: connects.map((v) => round(v, 3)) },
    },
  });
});

// 2. propagation: how fast a new or removed instance shows up. A client (this process, ClientFactory,
// round_robin) under steady load on two base instances (own process); in another process the library's
// EtcdRegistration registers a fresh instance (a real grpc-js server) and withdraws it once it has served,
// CYCLES times, one instance at a time. Timed in that process on its own clock: the registration write (the
// create-only put, sent after register() got its lease) -> first call its server receives; withdraw() (lease
// revoke) -> last call it receives.
// Interleaved in the same run, in this process (as loaded as the discovery watch): raw etcd put -> event
// seen by a bare etcd3 watcher (the put sent from this process, and from the registering process), and the
// floor of a first call: a fresh channel dialling a fresh server in the registering process -> first call
// received there.
import { credentials } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { GreeterClient } from './lib/greeter-server.mjs';
import { ROOT, now, round, sleep, withTimeout } from './lib/common.mjs';
import { createDiscoveryContext, discoveredGreeter, sayHello, steadyLoad } from './lib/client.mjs';
import { startBenchEtcd } from './lib/etcd.mjs';
import { histogramOf, summarize } from './lib/hdr.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';
import { forkChild } from './lib/processes.mjs';
import { filter, firstValueFrom } from 'rxjs';

const CYCLES = Number(process.env.BENCH_PROPAGATION_CYCLES ?? 300);
const WARMUP_CYCLES = 3;
const RAW_PER_CYCLE = 2;
const RATE_PER_SEC = Number(process.env.BENCH_PROPAGATION_RATE ?? 1_000);
const BASE_INSTANCES = 2;
/** An instance serves this long after its first call before it is withdrawn. */
const DWELL_MS = 20;
/**
 * After a withdrawal, nothing else happens this long, and the next registration comes after it: each
 * change is seen alone (a change within the watcher's rebuild interval of the last one would wait for it).
 */
const SETTLE_MS = 30;
/** Withdrawn instances keep serving this many cycles before they are shut down and their last call read. */
const KEEP_WITHDRAWN = 2;
const REGISTRANT = `${ROOT}bench/children/registrant.mjs`;
const RAW_PREFIX = '/bench-raw/';

const sleepUntil = (at) => sleep(Math.max(0, at - now()));

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
  const RAW_VALUE = JSON.stringify({ Addr: '127.0.0.1:1', Metadata: { version: '1.0.0' } });
  const rawSample = async () => {
    const key = `${RAW_PREFIX}${rawSeq++}`;
    const seen = new Promise((resolve) => rawWaiting.set(key, resolve));
    const t0 = now();
    await rawWriteClient.put(key).value(RAW_VALUE);
    const at = await withTimeout(seen, 5_000, `raw watch event for ${key}`);
    rawWaiting.delete(key);
    return at - t0;
  };
  // The same put sent from the registering process, as the registration's write is.
  const rawSampleFromRegistrant = async () => {
    const key = `${RAW_PREFIX}${rawSeq++}`;
    const seen = new Promise((resolve) => rawWaiting.set(key, resolve));
    const { sentAt, answeredAt } = await registrant.request('rawPut', { key, value: RAW_VALUE });
    const at = await withTimeout(seen, 5_000, `raw watch event for ${key}`);
    rawWaiting.delete(key);
    return { event: at - sentAt, answer: answeredAt - sentAt };
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

  // One instance at a time: prepared (server up, app context connected to etcd) before it is timed, joined,
  // withdrawn; shut down KEEP_WITHDRAWN cycles later, when its last call is read.
  const withdrawn = [];
  const dispose = async (cycle) => {
    const { lastCallAt, calls } = await registrant.request('dispose', { ref: cycle.ref });
    cycle.at.lastCall = lastCallAt;
    cycle.calls = calls;
    // Its port may go to a later instance: keep what was seen of this one.
    cycle.seen = { ...seen.get(cycle.address) };
  };
  let prepared = await registrant.request('prepare', { serviceName: 'greeter' });
  const runCycle = async (samples) => {
    const { ref, address } = prepared;
    seen.delete(address); // a port freed by an earlier instance may be handed out again
    const joined = await registrant.request('join', { ref }, 20_000);
    const cycle = { ref, address: joined.address, at: { register: joined.registerAt, put: joined.putAt, putAnswered: joined.putAnsweredAt, registered: joined.registeredAt, firstCall: joined.firstCallAt } };
    for (let k = 0; k < RAW_PER_CYCLE; k++) samples?.raw.push(await rawSample());
    samples?.rawFromRegistrant.push(await rawSampleFromRegistrant());
    const connect = await connectSample();
    samples?.connects.push(connect);
    await sleepUntil(joined.firstCallAt + DWELL_MS);
    const left = await registrant.request('leave', { ref });
    Object.assign(cycle.at, { remove: left.removeAt, revoke: left.revokeAt, removed: left.removedAt });
    withdrawn.push(cycle);
    await sleepUntil(left.removedAt + SETTLE_MS);
    while (withdrawn.length > KEEP_WITHDRAWN) await dispose(withdrawn.shift());
    prepared = await registrant.request('prepare', { serviceName: 'greeter' });
    return cycle;
  };

  for (let i = 0; i < WARMUP_CYCLES; i++) await runCycle();
  const cycles = [];
  const samples = { raw: [], rawFromRegistrant: [], connects: [] };
  const startedCyclesAt = now();
  for (let i = 0; i < CYCLES; i++) {
    cycles.push(await runCycle(samples));
    if ((i + 1) % 50 === 0) console.log(`cycle ${i + 1}/${CYCLES} (${((now() - startedCyclesAt) / 1000).toFixed(1)} s)`);
  }
  await sleep(300);
  while (withdrawn.length > 0) await dispose(withdrawn.shift());
  const loadResult = await load.stop();
  loadStopped = true;

  const addMs = (c) => c.at.firstCall - c.at.put;
  // A removal whose last call came before the withdrawal counts as 0 ms.
  const removeMs = (c) => Math.max(0, c.at.lastCall - c.at.remove);
  const between = (from, to) => cycles.map((c) => to(c) - from(c)).filter(Number.isFinite);
  const seenAt = (field) => (c) => c.seen[field] ?? NaN;
  const at = (field) => (c) => c.at[field];
  const stats = (values) => summarize(histogramOf(values));
  const breakdown = {
    'register() -> put sent (lease grant)': stats(between(at('register'), at('put'))),
    'put -> its answer (registering process)': stats(between(at('put'), at('putAnswered'))),
    'put -> bare watch event (after the library took it)': stats(between(at('put'), seenAt('watchPut'))),
    'put -> ClientFactory list': stats(between(at('put'), seenAt('listed'))),
    'list -> first call served': stats(between(seenAt('listed'), at('firstCall'))),
    'raw: put from the registering process -> its answer': stats(samples.rawFromRegistrant.map((r) => r.answer)),
    'raw: put from the registering process -> bare watch event': stats(samples.rawFromRegistrant.map((r) => r.event)),
    'floor: fresh channel dials fresh server -> first call served': stats(samples.connects),
    'withdraw() -> revoke sent': stats(between(at('remove'), at('revoke'))),
    'revoke -> bare watch event (after the library took it)': stats(between(at('revoke'), seenAt('watchDelete'))),
    'revoke -> ClientFactory list': stats(between(at('revoke'), seenAt('unlisted'))),
    'unlisted -> last call served': stats(between(seenAt('unlisted'), at('lastCall')).map((ms) => Math.max(0, ms))),
  };
  printTable('propagation: where the add/remove time goes (ms)', breakdown);
  const add = stats(cycles.map(addMs));
  const addFromRegister = stats(cycles.map((c) => c.at.firstCall - c.at.register));
  const remove = stats(cycles.map(removeMs));
  const rawWatch = stats(samples.raw);
  const rawFromRegistrant = breakdown['raw: put from the registering process -> bare watch event'];
  const floor = breakdown['floor: fresh channel dials fresh server -> first call served'];
  const registerAck = stats(cycles.map((c) => c.at.registered - c.at.register));
  const removeAck = stats(cycles.map((c) => c.at.removed - c.at.remove));
  const table = {
    'add: put -> first call served': add,
    'add from register(): lease grant + put -> first call served': addFromRegister,
    'remove: withdraw() -> last call served': remove,
    'raw: put -> bare watch event': rawWatch,
    'floor: fresh channel dials fresh server -> first call served': floor,
    'registrar put acknowledged': registerAck,
    'registrar delete+revoke acknowledged': removeAck,
  };
  printTable(`propagation: ${CYCLES} adds and removals under ${RATE_PER_SEC} calls/s; ${samples.raw.length} raw samples (ms)`, table);
  console.log(`load: ${loadResult.completed} calls, ${loadResult.failed} failed, ${loadResult.dropped} skipped${loadResult.errors.length ? `; errors: ${loadResult.errors.join(' | ')}` : ''}`);

  const watchPath = breakdown['put -> ClientFactory list'];
  const headline = {
    samples: cycles.length,
    addP50Ms: add.p50,
    addP99Ms: add.p99,
    removeP99Ms: remove.p99,
    rawWatchP99Ms: rawWatch.p99,
    connectFloorP99Ms: floor.p99,
  };
  writeResult('propagation', {
    startedAt: ctx.startedAt,
    headline: {
      ...headline,
      removeP50Ms: remove.p50,
      rawWatchP50Ms: rawWatch.p50,
      connectFloorP50Ms: floor.p50,
      addOverRawP99Ms: round(add.p99 - rawWatch.p99, 3),
      addFromRegisterP50Ms: addFromRegister.p50,
      addFromRegisterP99Ms: addFromRegister.p99,
      rawWatchFromRegistrantP99Ms: rawFromRegistrant.p99,
      rawSamples: samples.raw.length,
      connectFloorSamples: samples.connects.length,
      failedCalls: loadResult.failed,
    },
    goals: [
      goal('addP99Ms <= rawWatchP99Ms + connectFloorP99Ms + 5', add.p99, '<=', round(rawWatch.p99 + floor.p99 + 5, 3)),
      goal('removeP99Ms <= rawWatchP99Ms + 5', remove.p99, '<=', round(rawWatch.p99 + 5, 3)),
      goal('joins and leaves measured >= 300', cycles.length, '>=', 300),
      goal('no call failed during the churn', loadResult.failed, '==', 0),
    ],
    notes: [
      `Where the add time goes (p50): registration put -> ClientFactory list ${watchPath.p50} ms (a plain put from the same process -> bare watch event ${rawFromRegistrant.p50} ms), ` +
        `list -> first call served ${breakdown['list -> first call served'].p50} ms, ` +
        `against a floor of ${floor.p50} ms (p99 ${floor.p99} ms) for a fresh channel to dial a fresh server and have its first call received.`,
      'add is timed from the registration write: the create-only put, sent once register() has its lease (the lease grant before it is registration, not propagation; add from register() is reported beside it). ' +
        'Both ends in the registering process: when it sent the put to etcd, when its own server received the first call.',
      'remove is timed from withdraw() (its lease revoke removes the key) to the last call its server received; the server keeps serving for two more cycles, so a late call is still counted.',
      `Cycles run one at a time: an instance is prepared (server, app context connected to etcd) before it is timed, serves ${DWELL_MS} ms after its first call, and the next one registers ${SETTLE_MS} ms after a withdrawal at the earliest, so each change is seen alone.`,
      'raw: etcd put from one etcd3 client -> event on a bare etcd3 watcher, in the loaded client process, interleaved with the cycles; ' +
        'rawWatchFromRegistrant: the same put sent by a bare etcd3 client in the registering process, as the registration write is.',
      'The bare watcher on the service prefix shares the client process with the library and is served after it when both get an event at once: the library\'s own time is put -> ClientFactory list.',
      `removeMs < 0 (last call before the withdrawal) counts as 0; ${cycles.filter((c) => c.at.lastCall - c.at.remove < 0).length} of ${CYCLES}.`,
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      ratePerSec: RATE_PER_SEC,
      baseInstances: BASE_INSTANCES,
      dwellMs: DWELL_MS,
      settleMs: SETTLE_MS,
      summaries: table,
      breakdown,
      load: { ...loadResult, seconds: round(loadResult.seconds, 1) },
      samples: {
        addMs: cycles.map((c) => round(addMs(c), 3)),
        addFromRegisterMs: cycles.map((c) => round(c.at.firstCall - c.at.register, 3)),
        removeMs: cycles.map((c) => round(c.at.lastCall - c.at.remove, 3)),
        rawWatchMs: samples.raw.map((v) => round(v, 3)),
        rawWatchFromRegistrantMs: samples.rawFromRegistrant.map((r) => round(r.event, 3)),
        connectFloorMs: samples.connects.map((v) => round(v, 3)),
      },
    },
  });
});

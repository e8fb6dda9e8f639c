// 6. routing (issue 11): consistent hashing, subsetting and per-request routes, through the package's public entry
// points and real grpc-js servers in this process. Instance lists come from `nestjs-etcd-discovery/testing`
// (EtcdDiscoveryTestingModule + StaticInstanceSource): etcd is not what is measured here (propagation and scale
// measure it), the policies, the subsets and the routes are.
//  - remap: 10,000 keys mapped to 10 instances through real calls, one instance removed, mapped again;
//  - hot key: one key in 30 % of calls at concurrency 64, bounded (balanceFactor 1.25) vs unbounded (100);
//  - subsets: 100 client apps (each its own ClientFactory, hence its own random subset key) x 50 instances x
//    subsetSize 10, connections counted from grpc-js channelz on both ends;
//  - routes: canary / stable routes under every policy and with a subset, canaries coming and going under load.
import 'reflect-metadata';
import { Metadata } from '@grpc/grpc-js';
import { NestFactory } from '@nestjs/core';
import { ClientFactory } from 'nestjs-etcd-discovery';
import { EtcdDiscoveryTestingModule, StaticInstanceSource } from 'nestjs-etcd-discovery/testing';
import { firstValueFrom } from 'rxjs';
import { GREETER_PROTO, round, sleep, waitUntil } from './lib/common.mjs';
import { channelConnections, serverConnectionsByPort } from './lib/channelz.mjs';
import { startGreeterServer } from './lib/greeter-server.mjs';
import { runBenchmark } from './lib/harness.mjs';
import { goal, printTable, writeResult } from './lib/output.mjs';

const SERVICE = 'greeter';
const GREETER = { package: 'greeter', protoPath: GREETER_PROTO };
const HASH_KEY = 'x-user';

const HASH_INSTANCES = 10;
const REMAP_KEYS = 10_000;
const REMAP_CONCURRENCY = 32;
const HOT_SHARE = 0.3;
const HOT_CALLS = 6_000;
const HOT_CONCURRENCY = 64;
const HOT_DELAY_MS = 5;
const BALANCE_FACTOR = 1.25;
/** The largest factor the option takes: no load bound in practice, i.e. plain consistent hashing. */
const UNBOUNDED_FACTOR = 100;

const SUBSET_CLIENTS = 100;
const SUBSET_INSTANCES = 50;
const SUBSET_SIZE = 10;
const SUBSET_CALLS_PER_CLIENT = 20;

const ROUTE_CALLS = 2_500;
const ROUTE_CONCURRENCY = 16;
const CANARIES = 3;
const CHURN_EVERY_MS = 100;

const CALL_DEADLINE_MS = 10_000;

/** One SayHello with call metadata; resolves with the serving address, or with an error (never throws). */
async function call(service, entries = {}, delayMs = 0) {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  try {
    const reply = await firstValueFrom(service.sayHello({ name: 'bench', delayMs }, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }));
    return { ok: true, address: reply.address };
  } catch (error) {
    return { ok: false, error: String(error?.details ?? error?.message ?? error) };
  }
}

/** `concurrency` workers running `task(i)` for i = 0 .. count - 1. */
async function pool(count, concurrency, task) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await task(next++);
  }));
}

/** Deterministic PRNG (mulberry32), so a run's key sequence replays. */
function seededRandom(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The record a registration would write for `server`: a stable id (the etcd key's last segment) and metadata. */
const recordOf = (server, metadata = {}) => ({ id: `i${server.port}`, address: server.address, metadata });

const countBy = (values) => {
  const counts = new Map();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
};

/** A client-only Nest app over a static instance list, as a user's test or a small app would build it. */
async function testingApp(instances) {
  const app = await NestFactory.createApplicationContext(EtcdDiscoveryTestingModule.forRoot({ instances: { [SERVICE]: instances } }), { logger: ['error'] });
  return { app, factory: app.get(ClientFactory), source: app.get(StaticInstanceSource) };
}

function greeterOf(factory, options) {
  const client = factory.createClient(SERVICE, { ...GREETER, ...options });
  return { service: client.getService('Greeter'), channel: () => client.getClientByServiceName('Greeter').getChannel() };
}

/** Calls until every address in `addresses` has answered once (all connections READY). */
async function warmUp(service, addresses, entries = () => ({})) {
  const seen = new Set();
  let failures = 0;
  await waitUntil(async () => {
    const outcome = await call(service, entries());
    if (outcome.ok) seen.add(outcome.address);
    else failures += 1;
    return addresses.every((address) => seen.has(address));
  }, 15_000, `replies from ${addresses.length} instances`, 0);
  return failures;
}

await runBenchmark('routing', async (ctx) => {
  let failedCalls = 0;
  const failures = [];
  const noteFailure = (outcome) => {
    failedCalls += 1;
    if (failures.length < 5) failures.push(outcome.error);
  };

  const servers = await Promise.all(Array.from({ length: SUBSET_INSTANCES }, () => startGreeterServer()));
  ctx.defer(() => Promise.all(servers.map((server) => server.shutdown(1_000))));
  const apps = [];
  ctx.defer(() => Promise.all(apps.map((app) => app.close())));

  // ---- subsetting -------------------------------------------------------------------------------------------
  const subsetClients = [];
  const subsetApps = [];
  ctx.defer(() => Promise.all(subsetApps.splice(0).map((app) => app.close())));
  for (let i = 0; i < SUBSET_CLIENTS; i++) {
    // One app per client, as separate processes: its own ClientFactory (so its own random subset key) and, through
    // grpc-js's local subchannel pool, its own connections (one process's channels would otherwise share them).
    const { app, factory } = await testingApp(servers.map((server) => recordOf(server)));
    subsetApps.push(app);
    subsetClients.push(greeterOf(factory, { subsetSize: SUBSET_SIZE, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } }));
  }
  const reachedPerClient = subsetClients.map(() => new Set());
  await pool(SUBSET_CLIENTS * SUBSET_CALLS_PER_CLIENT, SUBSET_CLIENTS, async (i) => {
    const outcome = await call(subsetClients[i % SUBSET_CLIENTS].service);
    if (outcome.ok) reachedPerClient[i % SUBSET_CLIENTS].add(outcome.address);
    else noteFailure(outcome);
  });
  // Connections are made eagerly to the whole subset; wait until the count stops changing.
  let total = -1;
  await waitUntil(async () => {
    const now = [...(await serverConnectionsByPort()).values()].reduce((a, b) => a + b, 0);
    const stable = now === total;
    total = now;
    return stable;
  }, 20_000, 'connection count to settle', 500);
  const perClient = [];
  for (const client of subsetClients) perClient.push([...(await channelConnections(client.channel())).values()].reduce((a, b) => a + b, 0));
  const byPort = await serverConnectionsByPort();
  const perInstance = servers.map((server) => byPort.get(server.port) ?? 0);
  const averageClients = perInstance.reduce((a, b) => a + b, 0) / SUBSET_INSTANCES;
  const subsets = {
    connectionsPerClient: { min: Math.min(...perClient), max: Math.max(...perClient), total: perClient.reduce((a, b) => a + b, 0) },
    serverSideConnections: perInstance.reduce((a, b) => a + b, 0),
    instancesReachedPerClient: { min: Math.min(...reachedPerClient.map((set) => set.size)), max: Math.max(...reachedPerClient.map((set) => set.size)) },
    clientsPerInstance: { min: Math.min(...perInstance), max: Math.max(...perInstance), average: round(averageClients, 2) },
    maxOverAvgClients: round(Math.max(...perInstance) / averageClients, 3),
  };
  printTable(`subsets: ${SUBSET_CLIENTS} clients x ${SUBSET_INSTANCES} instances, subsetSize ${SUBSET_SIZE}`, {
    'connections per client (client channelz)': subsets.connectionsPerClient,
    'clients per instance (server channelz)': subsets.clientsPerInstance,
    'instances reached by calls, per client': subsets.instancesReachedPerClient,
  });
  // Closed before the next parts, whose clients call the same servers.
  await Promise.all(subsetApps.splice(0).map((app) => app.close()));

  // ---- consistent hashing: hot key, then remap --------------------------------------------------------------
  const hashServers = servers.slice(0, HASH_INSTANCES);
  const hashAddresses = hashServers.map((server) => server.address);
  const hashing = await testingApp(hashServers.map((server) => recordOf(server)));
  apps.push(hashing.app);
  const hashed = (balanceFactor) => greeterOf(hashing.factory, { loadBalancing: 'consistent_hash', consistentHash: { metadataKey: HASH_KEY, balanceFactor } }).service;
  const bounded = hashed(BALANCE_FACTOR);
  const unbounded = hashed(UNBOUNDED_FACTOR);
  for (const service of [bounded, unbounded]) failedCalls += await warmUp(service, hashAddresses);

  const hotRun = async (service, seed) => {
    const random = seededRandom(seed);
    const served = [];
    const hotServed = new Set();
    await pool(HOT_CALLS, HOT_CONCURRENCY, async () => {
      const hot = random() < HOT_SHARE;
      const outcome = await call(service, { [HASH_KEY]: hot ? 'hot-user' : `user-${Math.floor(random() * REMAP_KEYS)}` }, HOT_DELAY_MS);
      if (!outcome.ok) return noteFailure(outcome);
      served.push(outcome.address);
      if (hot) hotServed.add(outcome.address);
    });
    const counts = countBy(served);
    const perInstance = hashAddresses.map((address) => counts.get(address) ?? 0);
    return { maxOverAvg: round(Math.max(...perInstance) / (served.length / HASH_INSTANCES), 3), perInstance, hotKeyInstances: hotServed.size };
  };
  const hot = { bounded: await hotRun(bounded, 1), unbounded: await hotRun(unbounded, 1) };
  printTable(`hot key (${HOT_SHARE * 100} % of ${HOT_CALLS} calls, concurrency ${HOT_CONCURRENCY}): calls per instance`, {
    [`balanceFactor ${BALANCE_FACTOR}`]: { ...hot.bounded.perInstance, 'max/avg': hot.bounded.maxOverAvg },
    [`balanceFactor ${UNBOUNDED_FACTOR}`]: { ...hot.unbounded.perInstance, 'max/avg': hot.unbounded.maxOverAvg },
  });

  // Remap through real calls; the unbounded client, so that 32 calls in flight never spill a key off its instance.
  const keys = Array.from({ length: REMAP_KEYS }, (_, i) => `user-${i}`);
  const mapKeys = async () => {
    const owners = new Array(REMAP_KEYS);
    await pool(REMAP_KEYS, REMAP_CONCURRENCY, async (i) => {
      const outcome = await call(unbounded, { [HASH_KEY]: keys[i] });
      if (outcome.ok) owners[i] = outcome.address;
      else noteFailure(outcome);
    });
    return owners;
  };
  const before = await mapKeys();
  const removed = hashAddresses[0];
  hashing.source.set(SERVICE, hashServers.slice(1).map((server) => recordOf(server)));
  const removedKey = keys[before.indexOf(removed)];
  await waitUntil(async () => (await call(unbounded, { [HASH_KEY]: removedKey })).address !== removed, 5_000, 'the removal to reach the client');
  const after = await mapKeys();
  const moved = keys.map((_, i) => i).filter((i) => before[i] !== after[i]);
  const remap = {
    removedInstanceKeyShare: round(before.filter((owner) => owner === removed).length / REMAP_KEYS, 4),
    fraction: round(moved.length / REMAP_KEYS, 4),
    movedFromOtherInstances: moved.filter((i) => before[i] !== removed).length,
    callsToRemovedAfter: after.filter((owner) => owner === removed).length,
  };
  printTable(`remap: ${REMAP_KEYS} keys, 1 of ${HASH_INSTANCES} instances removed`, [remap]);

  // ---- per-request routes -----------------------------------------------------------------------------------
  const routeServers = servers.slice(0, HASH_INSTANCES);
  const canaryAddresses = new Set(routeServers.slice(0, CANARIES).map((server) => server.address));
  const routeRecord = (server) => recordOf(server, { canary: canaryAddresses.has(server.address) });
  const routing = await testingApp(routeServers.map(routeRecord));
  apps.push(routing.app);
  const routes = [
    { header: 'x-canary', equals: 'true', select: { metadata: { canary: true } } },
    { select: { metadata: { canary: false } } },
  ];
  const variants = {
    round_robin: { loadBalancing: 'round_robin' },
    p2c_ewma: { loadBalancing: 'p2c_ewma' },
    metadata_weighted: { loadBalancing: 'metadata_weighted' },
    consistent_hash: { loadBalancing: 'consistent_hash', consistentHash: { metadataKey: HASH_KEY } },
    'round_robin + subsetSize 3': { loadBalancing: 'round_robin', subsetSize: 3 },
  };
  const routeResults = {};
  let misroutes = 0;
  for (const [name, options] of Object.entries(variants)) {
    routing.source.set(SERVICE, routeServers.map(routeRecord));
    const { service } = greeterOf(routing.factory, { ...options, routes });
    failedCalls += await warmUp(service, [routeServers[0].address], () => ({ 'x-canary': 'true' }));
    // Canaries 2 and 3 and one stable instance come and go; canary 1 and the other stable instances stay.
    let churning = true;
    const churn = (async () => {
      for (let step = 0; churning; step++) {
        await sleep(CHURN_EVERY_MS);
        routing.source.set(SERVICE, routeServers.filter((_, i) => i === 0 || (i > 2 && i < 9) || (i === 1 + (step % 2)) || (i === 9 && step % 3 !== 0)).map(routeRecord));
      }
    })();
    let wrong = 0;
    let canaryCalls = 0;
    await pool(ROUTE_CALLS, ROUTE_CONCURRENCY, async (i) => {
      const canary = i % 2 === 0;
      canaryCalls += canary ? 1 : 0;
      const outcome = await call(service, { ...(canary ? { 'x-canary': 'true' } : {}), [HASH_KEY]: `user-${i % 500}` });
      if (!outcome.ok) return noteFailure(outcome);
      if (canaryAddresses.has(outcome.address) !== canary) wrong += 1;
    });
    churning = false;
    await churn;
    misroutes += wrong;
    routeResults[name] = { calls: ROUTE_CALLS, canaryCalls, misroutes: wrong };
  }
  printTable(`routes: ${ROUTE_CALLS} calls per policy at concurrency ${ROUTE_CONCURRENCY}, canaries changing every ${CHURN_EVERY_MS} ms`, routeResults);

  // ---- result -----------------------------------------------------------------------------------------------
  const hotBound = Math.ceil((BALANCE_FACTOR * HOT_CONCURRENCY) / HASH_INSTANCES) / (HOT_CONCURRENCY / HASH_INSTANCES);
  const headline = {
    hashRemapFraction: remap.fraction,
    hashMaxOverAvgLoad: hot.bounded.maxOverAvg,
    hashMaxOverAvgLoadUnbounded: hot.unbounded.maxOverAvg,
    subsetClients: SUBSET_CLIENTS,
    subsetInstances: SUBSET_INSTANCES,
    subsetSize: SUBSET_SIZE,
    subsetConnectionsPerClient: subsets.connectionsPerClient.max,
    subsetMaxOverAvgClients: subsets.maxOverAvgClients,
    perRequestMisroutes: misroutes,
    failedCalls,
  };
  writeResult('routing', {
    startedAt: ctx.startedAt,
    headline,
    goals: [
      goal('hashRemapFraction <= 0.13 (ideal 0.1: only the removed instance\'s keys move)', headline.hashRemapFraction, '<=', 0.13),
      goal('keys moved between instances that stayed', remap.movedFromOtherInstances, '==', 0),
      goal(`hashMaxOverAvgLoad <= ${round(hotBound + 0.05, 2)} (bound ceil(${BALANCE_FACTOR} x ${HOT_CONCURRENCY} / ${HASH_INSTANCES}) / ${HOT_CONCURRENCY / HASH_INSTANCES} = ${hotBound}, + 0.05)`, headline.hashMaxOverAvgLoad, '<=', round(hotBound + 0.05, 2)),
      goal(`subsetConnectionsPerClient (most of any client) <= subsetSize ${SUBSET_SIZE}`, headline.subsetConnectionsPerClient, '<=', SUBSET_SIZE),
      goal(`fewest connections of any client == subsetSize ${SUBSET_SIZE}`, subsets.connectionsPerClient.min, '==', SUBSET_SIZE),
      goal('subsetMaxOverAvgClients <= 2', headline.subsetMaxOverAvgClients, '<=', 2),
      goal('perRequestMisroutes', misroutes, '==', 0),
      goal('no call failed', failedCalls, '==', 0),
    ],
    notes: [
      `hashRemapFraction is measured through real calls: ${REMAP_KEYS} keys, each called once through a consistent_hash client (balanceFactor ${UNBOUNDED_FACTOR}, so ${REMAP_CONCURRENCY} calls in flight never spill a key), before and after ${removed} left; that instance had held ${(remap.removedInstanceKeyShare * 100).toFixed(2)} % of the keys, and ${remap.movedFromOtherInstances} keys moved between instances that stayed.`,
      `hashMaxOverAvgLoad: calls served by the busiest of ${HASH_INSTANCES} instances / the average, one key in ${HOT_SHARE * 100} % of ${HOT_CALLS} calls at concurrency ${HOT_CONCURRENCY} (+${HOT_DELAY_MS} ms per call at the server), balanceFactor ${BALANCE_FACTOR}; the hot key was served by ${hot.bounded.hotKeyInstances} instances. The same run with balanceFactor ${UNBOUNDED_FACTOR} (no bound): ${hot.unbounded.maxOverAvg} (${hot.unbounded.hotKeyInstances} instance${hot.unbounded.hotKeyInstances === 1 ? '' : 's'} for the hot key).`,
      `Subsets: ${SUBSET_CLIENTS} client apps, each its own ClientFactory (default random subset key) and grpc-js local subchannel pool, as separate processes would be; connections counted from grpc-js channelz: per client from its channel's connected subchannels (${subsets.connectionsPerClient.min} .. ${subsets.connectionsPerClient.max}, ${subsets.connectionsPerClient.total} in all), per instance from the server's open sessions (${subsets.clientsPerInstance.min} .. ${subsets.clientsPerInstance.max} clients, average ${subsets.clientsPerInstance.average}; ${subsets.serverSideConnections} in all).`,
      `Routes: a canary route (x-canary: true -> canary instances) and a default route (stable instances), ${ROUTE_CALLS} calls per policy, half of them canary, while canaries and one stable instance came and went every ${CHURN_EVERY_MS} ms; a misroute is a reply from an instance its call's route excluded.`,
      'Servers and clients share this process, so absolute rates are not the point; the counts are.',
      ...(failures.length > 0 ? [`First failures: ${failures.join(' | ')}`] : []),
    ],
    details: {
      loadAvgAtStart: ctx.loadAvgAtStart,
      hot: { share: HOT_SHARE, calls: HOT_CALLS, concurrency: HOT_CONCURRENCY, delayMs: HOT_DELAY_MS, balanceFactor: BALANCE_FACTOR, bound: hotBound, ...hot },
      remap: { keys: REMAP_KEYS, instances: HASH_INSTANCES, removed, ...remap },
      subsets,
      routes: routeResults,
    },
  });
});

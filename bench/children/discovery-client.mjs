// The discovering process of the scale benchmark, driven over IPC (run with --expose-gc). A client-only
// Nest application context with EtcdDiscoveryModule; it follows services through ClientFactory's
// instance-list Observables only (no channel is opened), so its heap holds watch state and lists.
//   init { hosts, namespace }          app context, etcd connection and code paths warmed, heap baseline after GC
//   discoverAll { services, perService }   subscribe to every service from cold; time + heap growth
//   rawListAll { services }            the same reads and watches with a bare etcd3 client (baseline)
//   churn { services, ratePerSec, durationMs }   writes changes, times when each list shows it
import { getHeapSpaceStatistics } from 'node:v8';
import { Etcd3 } from 'etcd3';
import { firstValueFrom } from 'rxjs';
import { now, round, sleep, withTimeout } from '../lib/common.mjs';
import { createDiscoveryContext } from '../lib/client.mjs';
import { histogramOf, summarize } from '../lib/hdr.mjs';
import { namingRecord } from '../lib/naming-record.mjs';
import { serveIpc } from '../lib/processes.mjs';

let hosts;
let namespace;
let app;
let factory;
let baselineHeap;
const subscriptions = [];
/** listeners notified on every list emission: (service, keys, at) */
const listListeners = new Set();

// As many services as a client following many services has: enough that the library already follows them the
// way it follows a thousand (one watch on the namespace), so that mode's code is compiled before the baseline.
const WARM_SERVICES = 40;
const WARM_INSTANCES = 10;

async function settledHeap() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    await sleep(50);
  }
  return process.memoryUsage().heapUsed;
}

function spaces() {
  return Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size]));
}

function spaceGrowth(before, after) {
  return Object.fromEntries(Object.keys(after).map((name) => [name, after[name] - (before[name] ?? 0)]).filter(([, bytes]) => bytes !== 0));
}

/**
 * Code paths warmed before the baseline: WARM_SERVICES x WARM_INSTANCES records (library format, other
 * service names) written here and followed like the measured ones. One-time costs (JIT code, inline
 * caches) then stay out of the per-instance figure; they are reported separately.
 */
async function warmUp() {
  const writer = new Etcd3({ hosts });
  const lease = writer.lease(60);
  await lease.grant();
  const names = Array.from({ length: WARM_SERVICES }, (_, k) => `warm-${k}`);
  await Promise.all(names.flatMap((service, k) => Array.from({ length: WARM_INSTANCES }, (_, i) => {
    const value = namingRecord({ host: '127.0.0.2', port: 40_000 + k * 100 + i }, { version: '1.0.0', zone: 'local' });
    return lease.put(`${namespace}/${service}/warm-${i}`).value(value).exec();
  })));
  const startedAt = now();
  await Promise.all(names.map((service) => new Promise((resolve) => {
    subscriptions.push(factory.instances(service).subscribe((list) => list.length >= WARM_INSTANCES && resolve()));
  })));
  const ms = now() - startedAt;
  warmLease = lease;
  warmWriter = writer;
  return { ms, services: WARM_SERVICES, instances: WARM_SERVICES * WARM_INSTANCES };
}
let warmLease;
let warmWriter;
let baselineSpaces;
let connectionHeap;

const handlers = {
  async init(message) {
    hosts = message.hosts;
    namespace = message.namespace;
    ({ app, factory } = await createDiscoveryContext({ hosts, namespace }));
    // Open the etcd connection and its watch stream once, so the baseline is not the connection's cost.
    await withTimeout(firstValueFrom(factory.instances('warm-up')), 10_000, 'warm-up list');
    connectionHeap = await settledHeap();
    const warm = await withTimeout(warmUp(), 30_000, 'warm-up discovery');
    baselineHeap = await settledHeap();
    baselineSpaces = spaces();
    return { baselineHeap, warm: { ...warm, heapGrowth: baselineHeap - connectionHeap } };
  },

  async discoverAll({ services, perService }) {
    const startedAt = now();
    const firstComplete = new Map();
    const counts = new Map();
    const done = new Promise((resolve) => {
      for (const service of services) {
        subscriptions.push(factory.instances(service).subscribe((list) => {
          const at = now();
          if (!firstComplete.has(service) && list.length >= perService) {
            firstComplete.set(service, at - startedAt);
            counts.set(service, list.length);
            if (firstComplete.size === services.length) resolve();
          }
          if (listListeners.size > 0) {
            const keys = new Set(list.map((instance) => instance.key));
            for (const listener of listListeners) listener(service, keys, at);
          }
        }));
      }
    });
    await withTimeout(done, 30_000, `every service listing ${perService} instances`);
    const coldDiscoverAllMs = Math.max(...firstComplete.values());
    const instances = [...counts.values()].reduce((sum, n) => sum + n, 0);
    const heap = await settledHeap();
    const growthBySpace = spaceGrowth(baselineSpaces, spaces());
    return {
      coldDiscoverAllMs,
      firstServiceMs: Math.min(...firstComplete.values()),
      services: firstComplete.size,
      instances,
      baselineHeap,
      heapAfter: heap,
      heapGrowth: heap - baselineHeap,
      heapBytesPerInstance: (heap - baselineHeap) / instances,
      growthBySpace,
    };
  },

  /** Baseline: the same prefix reads and watch creations with a bare etcd3 client on a fresh connection. */
  async rawListAll({ services }) {
    const client = new Etcd3({ hosts });
    try {
      await client.get('warm-up');
      const startedAt = now();
      const watchers = await Promise.all(services.map(async (service) => {
        await client.getAll().prefix(`${namespace}/${service}/`).keys();
        return client.watch().prefix(`${namespace}/${service}/`).create();
      }));
      const ms = now() - startedAt;
      await Promise.all(watchers.map((watcher) => watcher.cancel()));
      return { rawListAllMs: ms };
    } finally {
      client.close();
    }
  },

  /**
   * `ratePerSec` changes for `durationMs`, alternating: a new instance of a service, then the removal of
   * the oldest added one. Written from a second, bare etcd3 connection of this process (so both ends of
   * each lag use this process's clock); seen through ClientFactory's lists and, as the baseline, through a
   * bare etcd3 watcher on the whole namespace.
   */
  async churn({ services, ratePerSec, durationMs, pool = 50 }) {
    const writer = new Etcd3({ hosts });
    const watchClient = new Etcd3({ hosts });
    const lease = writer.lease(30);
    const added = [];
    const byKey = new Map(); // key -> changes of that key, in order
    const open = new Set(); // changes not yet seen in a list
    const rawWatcher = await watchClient.watch().prefix(`${namespace}/`).create();
    const onRaw = (type) => (kv) => {
      const change = byKey.get(kv.key.toString())?.find((c) => c.type === type && c.rawAt === undefined);
      if (change) change.rawAt = now();
    };
    rawWatcher.on('put', onRaw('add'));
    rawWatcher.on('delete', onRaw('remove'));
    const onList = (service, keys, at) => {
      for (const change of open) {
        if (change.service !== service) continue;
        // A removal counts as seen only once its addition had been seen.
        if (change.type === 'remove' && change.addition.listedAt === undefined) continue;
        if (change.type === 'add' ? keys.has(change.key) : !keys.has(change.key)) {
          change.listedAt = at;
          open.delete(change);
        }
      }
    };
    listListeners.add(onList);
    const changes = [];
    try {
      await lease.grant();
      const total = Math.round((ratePerSec * durationMs) / 1000);
      const startedAt = now();
      const writes = [];
      for (let i = 0; i < total; i++) {
        const due = startedAt + (i * 1000) / ratePerSec;
        while (now() < due) await sleep(Math.max(0, Math.min(5, due - now())));
        let change;
        // Adds until `pool` churn instances exist, then add and remove in turn: each lives ~pool changes.
        if (added.length < pool || i % 2 === 0) {
          const service = services[(i * 7) % services.length];
          const key = `${namespace}/${service}/churn-${i}`;
          const value = namingRecord({ host: '127.0.0.1', port: 30_000 + i }, { version: '1.0.0', zone: 'local' });
          change = { type: 'add', service, key };
          added.push(change);
          change.at = now();
          writes.push(lease.put(key).value(value).exec());
        } else {
          const addition = added.shift();
          change = { type: 'remove', service: addition.service, key: addition.key, addition };
          change.at = now();
          writes.push(writer.delete().key(change.key).exec());
        }
        byKey.set(change.key, [...(byKey.get(change.key) ?? []), change]);
        open.add(change);
        changes.push(change);
      }
      await Promise.all(writes);
      const wroteAllMs = now() - startedAt;
      const deadline = now() + 5_000;
      while ((open.size > 0 || changes.some((c) => c.rawAt === undefined)) && now() < deadline) await sleep(20);
      const lag = changes.filter((c) => c.listedAt !== undefined).map((c) => c.listedAt - c.at);
      const rawLag = changes.filter((c) => c.rawAt !== undefined).map((c) => c.rawAt - c.at);
      const both = changes.filter((c) => c.listedAt !== undefined && c.rawAt !== undefined);
      return {
        changes: changes.length,
        adds: changes.filter((c) => c.type === 'add').length,
        removes: changes.filter((c) => c.type === 'remove').length,
        wroteAllMs,
        missed: open.size,
        rawMissed: changes.filter((c) => c.rawAt === undefined).length,
        lag: summarize(histogramOf(lag)),
        rawLag: summarize(histogramOf(rawLag)),
        lagMinusRaw: summarize(histogramOf(both.map((c) => Math.max(0, c.listedAt - c.rawAt)))),
        samples: changes.map((c) => ({ type: c.type, lagMs: c.listedAt === undefined ? null : round(c.listedAt - c.at, 3), rawMs: c.rawAt === undefined ? null : round(c.rawAt - c.at, 3) })),
      };
    } finally {
      listListeners.delete(onList);
      await rawWatcher.cancel().catch(() => undefined);
      await lease.revoke().catch(() => undefined);
      writer.close();
      watchClient.close();
    }
  },
};

serveIpc(handlers, async () => {
  for (const subscription of subscriptions) subscription.unsubscribe();
  await warmLease?.revoke().catch(() => undefined);
  warmWriter?.close();
  await app?.close();
}).send({ ready: true, pid: process.pid });

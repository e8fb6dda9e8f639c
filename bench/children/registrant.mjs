// A registering process for the benchmarks, driven over IPC. It uses the library's own registration code
// (libs/etcd-discovery/dist: validateOptions, createEtcdClient, LeaseKeeper, Registrar) exactly as
// EtcdRegistration does, without a Nest app around it, so one process can stand for many instances.
//   init { hosts, namespace?, ttlSeconds? }
//   serve { count, delayMs?, serviceName? }          real grpc-js Greeter servers, each registered (own lease)
//   cycle { serviceName?, dwellMs?, trailMs? }       one more server: register, first call, deregister, last call
//   registerMany { mode: 'shared'|'per-instance', services, portBase }   records without servers
//   deregisterAll {}                                 withdraws what registerMany registered
//   probeServer {} / probeDone { address }           an unregistered server, for a direct-dial baseline
import { now, sleep, waitUntil } from '../lib/common.mjs';
import { startGreeterServer } from '../lib/greeter-server.mjs';
import { serveIpc } from '../lib/processes.mjs';
import { DEREGISTER_TIMEOUT_MS, METADATA, createRegistry } from '../lib/registry.mjs';

let registry;
/** Registered with a server: { server, keeper, registrar }. */
const served = [];
/** probeServer's servers by address. */
const probes = new Map();
/** registerMany's registrations: { keeper, registrar }. */
let many = [];

const handlers = {
  async init({ hosts, namespace = '/services', ttlSeconds = 10 }) {
    registry = createRegistry({ hosts, namespace, ttlSeconds });
    return { pid: process.pid };
  },

  async serve({ count, delayMs = 0, serviceName = 'greeter' }) {
    const addresses = [];
    for (let i = 0; i < count; i++) {
      const server = await startGreeterServer({ delayMs });
      const registration = await registry.register(registry.resolve({ serviceName, metadata: METADATA }), registry.endpoint(server.port));
      served.push({ server, ...registration });
      addresses.push(server.address);
    }
    return { addresses };
  },

  /**
   * One instance's life, timed in this process (the server's own receive times, the registrar's own write
   * times): start a server, grant its lease, register (t0 = just before the create-only put), wait for its
   * first call; after `dwellMs`, deregister (t1 = just before the delete) and keep serving for `trailMs` to
   * see the last call it gets; then shut it down.
   */
  async cycle({ serviceName = 'greeter', dwellMs = 100, trailMs = 250, firstCallTimeoutMs = 5_000 }) {
    const server = await startGreeterServer();
    const { registrar, startedAt, ackedAt } = await registry.register(registry.resolve({ serviceName, metadata: METADATA }), registry.endpoint(server.port));
    try {
      await waitUntil(() => server.state.firstCallAt !== undefined, firstCallTimeoutMs, `a first call to ${server.address}`, 1);
      await sleep(dwellMs);
      const removeAt = now();
      await registrar.stop(DEREGISTER_TIMEOUT_MS);
      const removedAt = now();
      await sleep(trailMs);
      return {
        address: server.address,
        addMs: server.state.firstCallAt - startedAt,
        registerAckMs: ackedAt - startedAt,
        removeMs: server.state.lastCallAt - removeAt,
        removeAckMs: removedAt - removeAt,
        calls: server.state.calls,
        at: { register: startedAt, registered: ackedAt, firstCall: server.state.firstCallAt, remove: removeAt, removed: removedAt, lastCall: server.state.lastCallAt },
      };
    } finally {
      await registrar.stop(DEREGISTER_TIMEOUT_MS);
      await server.shutdown(1_000);
    }
  },

  /** A server nobody is told about: the client dials it directly (the connect + first call floor). */
  async probeServer() {
    const server = await startGreeterServer();
    probes.set(server.address, server);
    return { address: server.address };
  },

  async probeDone({ address }) {
    const server = probes.get(address);
    probes.delete(address);
    await server.shutdown(1_000);
    return { firstCallAt: server.state.firstCallAt };
  },

  async registerMany({ mode, services, portBase }) {
    if (many.length > 0) throw new Error('registerMany: deregisterAll first');
    const startedAt = now();
    const records = services.map((serviceName, k) => ({ serviceName, host: '127.0.0.1', port: portBase + k, metadata: METADATA }));
    const endpoint = registry.endpoint(portBase);
    if (mode === 'shared') {
      // The library's way: one lease (one keeper) for every registration of the process.
      many = [await registry.register(registry.resolve(records), endpoint, { pregrant: false })];
    } else if (mode === 'per-instance') {
      // The Go anchors' way: every registered instance has its own lease and keepalive.
      many = await Promise.all(records.map((record) => registry.register(registry.resolve(record), endpoint, { pregrant: false })));
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
    const instances = many.flatMap(({ registrar }) => registrar.instances);
    return {
      ms: now() - startedAt,
      registrations: instances.length,
      leasesGranted: many.reduce((sum, { keeper }) => sum + keeper.grantCount, 0),
      keyBytes: instances.reduce((sum, record) => sum + Buffer.byteLength(record.key), 0),
      valueBytes: instances.reduce((sum, record) => sum + Buffer.byteLength(record.value), 0),
      sample: instances[0],
    };
  },

  async stats() {
    return {
      leasesGranted: many.reduce((sum, { keeper }) => sum + keeper.grantCount, 0),
      registrations: many.reduce((sum, { registrar }) => sum + registrar.instances.length, 0),
      registered: many.every(({ registrar }) => registrar.isRegistered),
      heapUsed: process.memoryUsage().heapUsed,
    };
  },

  async deregisterAll() {
    const startedAt = now();
    await Promise.all(many.map(({ registrar }) => registrar.stop(DEREGISTER_TIMEOUT_MS)));
    many = [];
    return { ms: now() - startedAt };
  },
};

async function cleanup() {
  await Promise.all([...many, ...served].map(({ registrar }) => registrar.stop(DEREGISTER_TIMEOUT_MS)));
  await Promise.all(served.map(({ server }) => server.shutdown(500)));
  registry?.close();
}

const ipc = serveIpc(handlers, cleanup);
ipc.send({ ready: true, pid: process.pid });

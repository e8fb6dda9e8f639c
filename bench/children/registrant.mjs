// A registering process for the benchmarks, driven over IPC. It registers through the package's public
// entry point (bench/lib/registry.mjs: a Nest application context with EtcdDiscoveryModule per registering
// app), or, for the baseline, with plain etcd3 (bench/lib/lease-per-instance.mjs); one process can stand for
// many instances.
//   init { hosts, namespace?, ttlSeconds? }
//   serve { count, delayMs?, serviceName? }          real grpc-js Greeter servers, each registered (own lease)
//   cycle { serviceName?, dwellMs?, trailMs? }       one more server: register, first call, deregister, last call
//   registerMany { mode: 'shared'|'per-instance', services, portBase }   records without servers
//   deregisterAll {}                                 withdraws what registerMany registered
//   probeServer {} / probeDone { address }           an unregistered server, for a direct-dial baseline
//   prepare { serviceName? } -> join { ref } -> leave { ref } -> dispose { ref }
//                                                    cycle's steps, driven one by one (propagation.mjs)
//   rawPut { key, value }                            a plain put from this process, timed when sent
import { Etcd3, KVClient, LeaseClient } from 'etcd3';
import { now, sleep, waitUntil } from '../lib/common.mjs';
import { startGreeterServer } from '../lib/greeter-server.mjs';
import { leasePerInstanceRegistry } from '../lib/lease-per-instance.mjs';
import { serveIpc } from '../lib/processes.mjs';
import { METADATA, loopbackEndpoint, openRegistration, registerInstance } from '../lib/registry.mjs';

/** init's settings, for every registration this process opens. */
let settings;
/** Registered with a server: { server, close }. */
const served = [];
/** probeServer's servers by address. */
const probes = new Map();
/** registerMany's current round: { mode, leases, instances, registered(), withdraw(), close() }. */
let many;
/** The plain-etcd3 baseline's client, made at init so both modes register on a connected process. */
let baseline;
/** prepare's instances by ref (an answer's `id` is the request's): { server, instance }. */
const instances = new Map();
let nextRef = 1;
/** rawPut's etcd3 client. */
let rawWriter;
/** When this process last sent a KV txn and a lease revoke to etcd (stamped once `prepare` ran). */
const sentAt = { txn: -Infinity, txnAnswered: -Infinity, revoke: -Infinity };

/**
 * Notes when requests leave for etcd, so a join is timed from its registration write (the create-only put,
 * a txn) rather than from register(), which grants the lease first. Measurement only: the calls pass through.
 */
let stamping = false;
function stampEtcdRequests() {
  if (stamping) return;
  stamping = true;
  const { txn } = KVClient.prototype;
  KVClient.prototype.txn = function stampedTxn(...args) {
    sentAt.txn = now();
    return txn.apply(this, args).then((response) => {
      sentAt.txnAnswered = now();
      return response;
    });
  };
  const { leaseRevoke } = LeaseClient.prototype;
  LeaseClient.prototype.leaseRevoke = function stampedRevoke(...args) {
    sentAt.revoke = now();
    return leaseRevoke.apply(this, args);
  };
}

const handlers = {
  async init({ hosts, namespace = '/services', ttlSeconds = 10, keepaliveIntervalMs }) {
    settings = { hosts, namespace, ttlSeconds, keepaliveIntervalMs };
    baseline = leasePerInstanceRegistry(settings);
    return { pid: process.pid };
  },

  async serve({ count, delayMs = 0, serviceName = 'greeter' }) {
    const addresses = [];
    for (let i = 0; i < count; i++) {
      const server = await startGreeterServer({ delayMs });
      const { close } = await registerInstance({ ...settings, registration: { serviceName, metadata: METADATA } }, loopbackEndpoint(server.port));
      served.push({ server, close });
      addresses.push(server.address);
    }
    return { addresses };
  },

  /**
   * One instance's life, timed in this process (the server's own receive times, the registration's own
   * times): start a server and its app context (etcd connection opened), register (t0 = register(): lease
   * grant, then create-only put), wait for its first call; after `dwellMs`, deregister (t1 = just before the
   * withdrawal: lease revoked) and keep serving for `trailMs` to see the last call it gets; then shut it down.
   */
  async cycle({ serviceName = 'greeter', dwellMs = 100, trailMs = 250, firstCallTimeoutMs = 5_000 }) {
    const server = await startGreeterServer();
    const instance = await openRegistration({ ...settings, registration: { serviceName, metadata: METADATA } });
    try {
      await instance.warmConnection();
      const { startedAt, ackedAt } = await instance.register(loopbackEndpoint(server.port));
      await waitUntil(() => server.state.firstCallAt !== undefined, firstCallTimeoutMs, `a first call to ${server.address}`, 1);
      await sleep(dwellMs);
      const removeAt = now();
      await instance.registration.withdraw();
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
      await instance.close();
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

  /** A server and its registering app context, connected to etcd, not registered yet. */
  async prepare({ serviceName = 'greeter' }) {
    stampEtcdRequests();
    const server = await startGreeterServer();
    const instance = await openRegistration({ ...settings, registration: { serviceName, metadata: METADATA } });
    await instance.warmConnection();
    const ref = nextRef++;
    instances.set(ref, { server, instance });
    return { ref, address: server.address };
  },

  /** Registers a prepared instance; answers once its server got its first call. */
  async join({ ref, firstCallTimeoutMs = 5_000 }) {
    const { server, instance } = instances.get(ref);
    const txnBefore = sentAt.txn;
    const { startedAt, ackedAt } = await instance.register(loopbackEndpoint(server.port));
    const putAt = sentAt.txn > txnBefore ? sentAt.txn : NaN;
    const putAnsweredAt = sentAt.txnAnswered > txnBefore ? sentAt.txnAnswered : NaN;
    await waitUntil(() => server.state.firstCallAt !== undefined, firstCallTimeoutMs, `a first call to ${server.address}`, 1);
    return { address: server.address, registerAt: startedAt, putAt, putAnsweredAt, registeredAt: ackedAt, firstCallAt: server.state.firstCallAt };
  },

  /** Withdraws (lease revoked: its key goes); the server keeps serving whatever still reaches it. */
  async leave({ ref }) {
    const { instance } = instances.get(ref);
    const revokeBefore = sentAt.revoke;
    const removeAt = now();
    await instance.registration.withdraw();
    const removedAt = now();
    return { removeAt, revokeAt: sentAt.revoke > revokeBefore ? sentAt.revoke : NaN, removedAt };
  },

  /** A plain put from this process (a bare etcd3 client): raw etcd propagation as the registering process sends it. */
  async rawPut({ key, value }) {
    rawWriter ??= new Etcd3({ hosts: settings.hosts });
    const putAt = now();
    await rawWriter.put(key).value(value);
    return { sentAt: putAt, answeredAt: now() };
  },

  /** Shuts a withdrawn instance down; answers with the last call its server received. */
  async dispose({ ref }) {
    const { server, instance } = instances.get(ref);
    instances.delete(ref);
    const { lastCallAt, firstCallAt, calls } = server.state;
    await instance.close();
    await server.shutdown(1_000);
    return { lastCallAt, firstCallAt, calls };
  },

  async registerMany({ mode, services, portBase }) {
    if (many) throw new Error('registerMany: deregisterAll first');
    const records = services.map((serviceName, k) => ({ serviceName, host: '127.0.0.1', port: portBase + k, metadata: METADATA }));
    let startedAt;
    if (mode === 'shared') {
      // The library's way: one serving app registering every record under its one lease.
      const app = await openRegistration({ ...settings, registration: records });
      many = { mode, close: app.close, withdraw: () => app.registration.withdraw(), registered: () => app.registration.isRegistered,
        leases: () => app.registration.leasesGranted, instances: () => app.registration.instances };
      ({ startedAt } = await app.register(loopbackEndpoint(portBase)));
    } else if (mode === 'per-instance') {
      // The baseline: what plain etcd3 code does, a lease and a keepalive per registered instance.
      startedAt = now();
      const registered = await baseline.registerEach(records);
      many = { mode, close: async () => undefined, withdraw: () => baseline.deregister(registered), registered: () => true,
        leases: () => registered.length, instances: () => registered.map(({ instance }) => instance) };
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
    const ms = now() - startedAt;
    const instances = many.instances();
    return {
      ms,
      registrations: instances.length,
      leasesGranted: many.leases(),
      keyBytes: instances.reduce((sum, record) => sum + Buffer.byteLength(record.key), 0),
      valueBytes: instances.reduce((sum, record) => sum + Buffer.byteLength(record.value), 0),
      sample: instances[0],
    };
  },

  async stats() {
    return {
      leasesGranted: many?.leases() ?? 0,
      registrations: many?.instances().length ?? 0,
      registered: many?.registered() ?? false,
      heapUsed: process.memoryUsage().heapUsed,
    };
  },

  async deregisterAll() {
    const startedAt = now();
    await many?.withdraw();
    const ms = now() - startedAt;
    await many?.close();
    many = undefined;
    return { ms };
  },
};

async function cleanup() {
  await Promise.all([many?.withdraw(), many?.close(), ...served.map(({ close }) => close()), ...[...instances.values()].map(({ instance }) => instance.close())]);
  await Promise.all([...served, ...instances.values()].map(({ server }) => server.shutdown(500)));
  baseline?.close();
  rawWriter?.close();
}

const ipc = serveIpc(handlers, cleanup);
ipc.send({ ready: true, pid: process.pid });

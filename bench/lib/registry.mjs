// The library's registration code (libs/etcd-discovery/dist internals) without a Nest app around it:
// what EtcdRegistration.register() does (a LeaseKeeper and a Registrar), so one process can stand for many
// instances. Options go through the library's own validateOptions, the client through createEtcdClient.
import { LIB_DIST, now, quietLogger } from './common.mjs';

const { validateOptions } = await import(`${LIB_DIST}options/validate-options.js`);
const { createEtcdClient } = await import(`${LIB_DIST}registry/etcd-client.factory.js`);
const { LeaseKeeper } = await import(`${LIB_DIST}registry/lease-keeper.js`);
const { Registrar } = await import(`${LIB_DIST}registry/registrar.js`);
const { newInstanceId } = await import(`${LIB_DIST}registry/registry-keys.js`);

export const DEREGISTER_TIMEOUT_MS = 3_000;
export const METADATA = { version: '1.0.0', zone: 'local' };
export const GRPC_SERVICES = ['greeter.Greeter'];

export function createRegistry({ hosts, namespace = '/services', ttlSeconds = 10 }) {
  const base = { etcd: { hosts }, namespace, server: { ttlSeconds } };
  const resolved = validateOptions(base);
  const client = createEtcdClient(resolved.etcd);
  const logger = quietLogger(`registry ${process.pid}`);
  return {
    client,
    /** RegistrationOptions (one or many) -> the library's resolved registrations. */
    resolve: (registration) => validateOptions({ ...base, registration }).registrations,
    /**
     * Registers under a new lease; `pregrant` grants it first, so `startedAt` is just before the create-only put.
     * Resolves once every record is in etcd.
     */
    async register(registrations, endpoint, { pregrant = true, instanceId = newInstanceId() } = {}) {
      const keeper = new LeaseKeeper(client, resolved.server.ttlSeconds, logger);
      if (pregrant) await keeper.acquire();
      const registrar = new Registrar(client, keeper, resolved.namespace, instanceId, logger);
      const startedAt = now();
      registrar.start(registrations, endpoint);
      await registrar.whenRegistered();
      return { keeper, registrar, startedAt, ackedAt: now() };
    },
    /** An instance's ServingEndpoint on loopback. */
    endpoint: (port) => ({ address: { host: '127.0.0.1', port }, grpcServices: GRPC_SERVICES }),
    close: () => client.close(),
  };
}

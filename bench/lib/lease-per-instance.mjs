// The baseline of the registration benchmark: registration as a user without this library writes it with
// plain etcd3 (and as go-zero's publisher and OpenIM do): per instance its own lease, a put under it and
// etcd3's automatic keepalive; revoke to deregister. Same keys and records as the library writes.
import { Etcd3 } from 'etcd3';
import { instanceId, namingRecord } from './naming-record.mjs';

export function leasePerInstanceRegistry({ hosts, namespace = '/services', ttlSeconds = 10 }) {
  const client = new Etcd3({ hosts });
  return {
    /** Registers each `{ serviceName, host, port, metadata }` under a lease of its own. */
    async registerEach(records) {
      return Promise.all(records.map(async ({ serviceName, host, port, metadata }) => {
        const lease = client.lease(ttlSeconds);
        const key = `${namespace}/${serviceName}/${instanceId()}`;
        const value = namingRecord({ host, port }, metadata);
        await lease.put(key).value(value);
        return { lease, instance: { serviceName, key, address: `${host}:${port}`, value } };
      }));
    },
    /** Revokes the leases (their keys go with them). */
    deregister: (registered) => Promise.all(registered.map(({ lease }) => lease.revoke().catch(() => undefined))),
    close: () => client.close(),
  };
}

import type { Etcd3 } from 'etcd3';

/** LeaseTimeToLive requests in flight at once: a process's records share one lease, so there are few. */
const CONCURRENCY = 8;
export const NO_LEASE = '0';

/**
 * Seconds each lease has left (etcd's LeaseTimeToLive), by decimal lease id; -1 for a lease etcd no
 * longer knows (it expired between the listing and this question).
 */
export async function leaseTtls(client: Etcd3, leases: Iterable<string>): Promise<ReadonlyMap<string, number>> {
  const pending = [...new Set(leases)].filter((lease) => lease !== NO_LEASE);
  const ttls = new Map<string, number>();
  const worker = async (): Promise<void> => {
    for (let lease = pending.pop(); lease !== undefined; lease = pending.pop()) {
      const response = await client.leaseClient.leaseTimeToLive({ ID: lease, keys: false });
      ttls.set(lease, Number(response.TTL));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, pending.length) }, worker));
  return ttls;
}

/** etcdctl's spelling of a lease id: hexadecimal. */
export function leaseHex(lease: string): string {
  // As etcdctl prints it (%016x), so an id copied from `etcdctl lease grant` or `lease list` matches.
  return BigInt(lease).toString(16).padStart(16, '0');
}

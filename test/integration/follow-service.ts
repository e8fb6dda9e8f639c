// One service followed through DiscoveryHub.watch on a library etcd client of its own, as a calling app follows it;
// every emitted list and error is kept, and the hub, client and subscription are closed after the test.
import { DiscoveryHub } from '../../libs/etcd-discovery/src/discovery/discovery-hub.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { discoveryOptions } from '../support/etcd.js';
import type { EtcdFixture } from '../support/use-etcd.js';

export interface FollowedService {
  readonly emissions: (readonly ServiceInstance[])[];
  readonly errors: unknown[];
  /** The latest list; undefined before the first. */
  latest(): readonly ServiceInstance[] | undefined;
  /** `address` of every instance in the latest list, in list order; undefined before the first list. */
  addresses(): string[] | undefined;
}

/** Follows `service` under `namespace`, through `endpoint` (default the fixture's etcd, e.g. a proxy in front of it). */
export function followService(fx: EtcdFixture, namespace: string, service: string, endpoint = fx.etcd.endpoint): FollowedService {
  const client = createEtcdClient(discoveryOptions(endpoint, namespace).etcd);
  const hub = new DiscoveryHub(client, namespace);
  const emissions: (readonly ServiceInstance[])[] = [];
  const errors: unknown[] = [];
  const subscription = hub.watch(service).subscribe({ next: (list) => emissions.push(list), error: (error) => errors.push(error) });
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => hub.close());
  fx.cleanup.add(() => subscription.unsubscribe());
  return {
    emissions,
    errors,
    latest: () => emissions.at(-1),
    addresses: () => emissions.at(-1)?.map((instance) => instance.address),
  };
}

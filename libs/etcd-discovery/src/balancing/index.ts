import { setup as setupConsistentHash } from './consistent-hash.balancer.js';
import { setup as setupEtcdResolver } from './etcd.resolver.js';
import { setup as setupMetadataWeighted } from './metadata-weighted.balancer.js';
import { setup as setupP2cEwma } from './p2c-ewma.balancer.js';
import { setup as setupRoundRobin } from './round-robin.balancer.js';

export { ETCD_SCHEME, type DiscoveredEndpoint } from './etcd.resolver.js';
export { routeInstances, type InstanceSelector } from './instance-routing.js';
export { METADATA_WEIGHTED_POLICY } from './metadata-weighted.balancer.js';
export { P2C_EWMA_POLICY } from './p2c-ewma.balancer.js';
export { CONSISTENT_HASH_POLICY } from './consistent-hash.balancer.js';
export { ROUND_ROBIN_POLICY } from './round-robin.balancer.js';
export { REQUEST_ROUTES_OPTION, type RequestRoute } from './request-routes.js';

/** Registers the etcd resolver and our balancing policies with the shared grpc-js; idempotent. */
export function setupBalancing(): void {
  setupEtcdResolver();
  setupP2cEwma();
  setupMetadataWeighted();
  setupConsistentHash();
  setupRoundRobin();
}

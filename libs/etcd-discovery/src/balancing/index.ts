import { setup as setupEtcdResolver } from './etcd.resolver.js';
import { setup as setupMetadataWeighted } from './metadata-weighted.balancer.js';
import { setup as setupP2cEwma } from './p2c-ewma.balancer.js';

/** Registers the etcd resolver and our balancing policies with the shared grpc-js; idempotent. */
export function setupBalancing(): void {
  setupEtcdResolver();
  setupP2cEwma();
  setupMetadataWeighted();
}

import type { ServiceInstance } from './service-instance.js';

/**
 * What a process knows about one service: its routable instances once etcd has been listed, or,
 * until then, why listing failed. "No instance" and "etcd cannot be read" stay distinct, so a call
 * made before the first list can fail at once with the real reason instead of waiting forever.
 */
export type DiscoveryState =
  | { readonly kind: 'listed'; readonly instances: readonly ServiceInstance[] }
  | { readonly kind: 'unlisted'; readonly reason: string };

export { DiscoveryHub } from './discovery-hub.js';
export type { InstanceSource } from './instance-source.js';
export type { DiscoveryState } from './discovery-state.js';
export { buildInstanceList, diffInstances, isEmptyDiff, type DecodedEntry, type InstanceListDiff } from './instance-list.js';
export type { ServiceInstance } from './service-instance.js';
export { ServiceWatcher, type ServiceSync } from './service-watcher.js';

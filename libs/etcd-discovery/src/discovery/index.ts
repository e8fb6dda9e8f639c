export { DiscoveryHub, type InstanceSource } from './discovery-hub.js';
export type { DiscoveryState } from './discovery-state.js';
export { buildInstanceList, diffInstances, isEmptyDiff, type DecodedEntry, type InstanceListDiff } from './instance-list.js';
export { ServiceWatcher } from './service-watcher.js';

export { ClientFactory } from './client-factory.js';
export type {
  DiscoveredClientOptions,
  DiscoveredClientRegistration,
  InstanceSelector,
  LoadBalancingPolicy,
  OutlierDetectionOptions,
  RetryOptions,
} from './discovered-client-options.interface.js';
export { InjectDiscoveredClient, discoveredClientToken } from './inject-discovered-client.decorator.js';
export { NoLiveInstanceError } from './no-live-instance.error.js';

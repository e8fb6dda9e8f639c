export { ClientFactory } from './client-factory.js';
export type {
  ConsistentHashOptions,
  DiscoveredClientAsyncRegistration,
  DiscoveredClientOptions,
  DiscoveredClientRegistration,
  InstanceSelector,
  LoadBalancingPolicy,
  OutlierDetectionOptions,
  RequestRoute,
  RetryOptions,
} from './discovered-client-options.interface.js';
export { InjectDiscoveredClient, discoveredClientToken } from './inject-discovered-client.decorator.js';
export { NoLiveInstanceError } from './no-live-instance.error.js';
export { buildServiceConfig, LOAD_BALANCING_POLICIES } from './service-config.js';
export { validateClientOptions, type ResolvedClientOptions } from './validate-client-options.js';

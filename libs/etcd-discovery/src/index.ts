// The public API. Everything not exported here is internal and may change in any release.
export { EtcdDiscoveryModule } from './module/index.js';
export {
  InvalidDiscoveryOptionsError,
  type EtcdConnectionOptions,
  type EtcdDiscoveryModuleAsyncOptions,
  type EtcdDiscoveryModuleOptions,
  type EtcdDiscoveryOptionsFactory,
  type EtcdTlsOptions,
  type RegistrationOptions,
  type ServerLifecycleOptions,
} from './options/index.js';
export { DiscoverableGrpcServer, EtcdRegistration, withEtcdDiscovery, type RegistrationState } from './server/index.js';
export {
  ClientFactory,
  type ConsistentHashOptions,
  InjectDiscoveredClient,
  NoLiveInstanceError,
  discoveredClientToken,
  type DiscoveredClientAsyncRegistration,
  type DiscoveredClientOptions,
  type DiscoveredClientRegistration,
  type InstanceSelector,
  type LoadBalancingPolicy,
  type OutlierDetectionOptions,
  type RequestRoute,
  type RetryOptions,
} from './client/index.js';
export type { ServiceInstance } from './discovery/index.js';
export {
  EtcdDiscoveryHealthIndicator,
  type EtcdDiscoveryHealthDetails,
  type EtcdDiscoveryHealthResult,
  type EtcdDiscoveryHealthThresholds,
  type EtcdReachabilityHealth,
  type FollowedServiceHealth,
  type RegistrationHealth,
} from './health/index.js';
export type { RegisteredInstance } from './registry/index.js';

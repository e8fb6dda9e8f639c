export { EtcdDiscoveryHealthIndicator } from './etcd-discovery.health-indicator.js';
export type {
  EtcdDiscoveryHealthDetails,
  EtcdDiscoveryHealthResult,
  EtcdReachabilityHealth,
  FollowedServiceHealth,
  RegistrationHealth,
} from './health-result.js';
export { defaultHealthThresholds, resolveHealthThresholds, type EtcdDiscoveryHealthThresholds } from './health-thresholds.js';

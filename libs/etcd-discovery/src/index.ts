export { EtcdDiscoveryModule } from './module/etcd-discovery.module.js';
export type {
  EtcdConnectionOptions,
  EtcdDiscoveryModuleAsyncOptions,
  EtcdDiscoveryModuleOptions,
  EtcdDiscoveryOptionsFactory,
  EtcdTlsOptions,
  RegistrationOptions,
  ServerLifecycleOptions,
} from './module/etcd-discovery-options.interface.js';
export { InvalidDiscoveryOptionsError } from './module/invalid-options.error.js';
export { withEtcdDiscovery } from './server/with-etcd-discovery.js';
export { DiscoverableGrpcServer } from './server/discoverable-grpc.server.js';
export { EtcdRegistration } from './server/etcd-registration.js';
export { ClientFactory } from './client/client-factory.js';
export type {
  DiscoveredClientOptions,
  DiscoveredClientRegistration,
  InstanceSelector,
  LoadBalancingPolicy,
  OutlierDetectionOptions,
  RetryOptions,
} from './client/discovered-client-options.interface.js';
export { InjectDiscoveredClient, discoveredClientToken } from './client/inject-discovered-client.decorator.js';
export { NoLiveInstanceError } from './client/no-live-instance.error.js';
export type { ServiceInstance } from './registry/registry-record.codec.js';

export { EtcdDiscoveryModule } from './etcd-discovery.module.js';
export type {
  EtcdConnectionOptions,
  EtcdDiscoveryModuleAsyncOptions,
  EtcdDiscoveryModuleOptions,
  EtcdDiscoveryOptionsFactory,
  EtcdTlsOptions,
  RegistrationOptions,
  ServerLifecycleOptions,
} from './etcd-discovery-options.interface.js';
export { InvalidDiscoveryOptionsError } from './invalid-options.error.js';
export { validateClientOptions } from './validate-client-options.js';
export { validateOptions } from './validate-options.js';

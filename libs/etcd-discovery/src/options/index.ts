export { parseAllowEntry, type AllowEntry } from './allowed-addresses.js';
export * from './defaults.js';
export type {
  EtcdConnectionOptions,
  EtcdDiscoveryModuleAsyncOptions,
  EtcdDiscoveryModuleOptions,
  EtcdDiscoveryOptionsFactory,
  EtcdTlsOptions,
  RegistrationOptions,
  ServerLifecycleOptions,
} from './etcd-discovery-options.interface.js';
export { failOption, InvalidDiscoveryOptionsError } from './invalid-options.error.js';
export * from './metadata-rules.js';
export type { ResolvedDiscoveryOptions, ResolvedRegistration } from './resolved-options.js';
export { validateOptions, validateServiceName } from './validate-options.js';

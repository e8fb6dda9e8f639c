export { EtcdDiscoveryModule, EtcdDiscoveryFeatureModule } from './etcd-discovery.module.js';
export { ETCD_CLIENT, ETCD_DISCOVERY_OPTIONS, RESOLVED_DISCOVERY_OPTIONS } from './etcd-discovery.constants.js';

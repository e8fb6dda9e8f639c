// nestjs-etcd-discovery/testing: discovery without etcd, for unit tests of apps that call discovered services.
export { EtcdDiscoveryTestingModule, type EtcdDiscoveryTestingOptions } from './etcd-discovery-testing.module.js';
export { StaticInstanceSource, type StaticInstance } from './static-instance-source.js';

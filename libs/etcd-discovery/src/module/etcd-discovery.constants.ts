export { ETCD_DISCOVERY_OPTIONS } from './etcd-discovery.module-definition.js';
export const RESOLVED_DISCOVERY_OPTIONS = Symbol('RESOLVED_DISCOVERY_OPTIONS');
export const ETCD_CLIENT = Symbol('ETCD_CLIENT');

export { AddressPolicy } from './address-policy.js';
export { createEtcdClient } from './etcd-client.factory.js';
export { EtcdActivity, etcdActivityOf, type EtcdActivitySnapshot, type EtcdFailureRecord } from './etcd-activity.js';
export { LeaseKeeper, type GrantedLease } from './lease-keeper.js';
export { PrefixMirror, type MirrorEntry, type MirrorSnapshot } from './prefix-mirror.js';
export { Registrar, type RegisteredInstance, type ServingEndpoint } from './registrar.js';
export { instanceIdOf, instanceKey, newInstanceId, servicePrefix } from './registry-keys.js';
export { decodeRecord, encodeRecord, MAX_RECORD_BYTES, type DecodeResult } from './registry-record.codec.js';
export { wellKnownMetadata, type WellKnownMetadata } from './well-known-metadata.js';

/**
 * One live instance as clients see it. The wire format is etcd's own naming format
 * (`go.etcd.io/etcd/client/v3/naming/endpoints`): `{"Addr":"10.0.0.7:50051","Metadata":{...}}`.
 */
export interface ServiceInstance {
  readonly id: string;
  readonly key: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Deep-frozen; at most 8 levels, 64 keys per object, 32 KiB of JSON. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

// A registry record as the package README's "Registry format" describes it (etcd's own naming format,
// go.etcd.io/etcd/client/v3/naming/endpoints), for the records a benchmark writes without the library:
// the lease-per-instance baseline and the scale benchmark's warm-up and churn writes.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** `{"Addr":"host:port","Metadata":{...}}`, with the fields a serving app's registration adds to its metadata. */
export function namingRecord({ host, port }, metadata, grpcServices = ['greeter.Greeter']) {
  return JSON.stringify({ Addr: `${host}:${port}`, Metadata: { ...metadata, grpcServices, startedAt: new Date().toISOString() } });
}

/** `<host>-<pid>-<random>`, the README's instance id: unique per process start. */
export function instanceId() {
  return `${hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'host'}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

import type { Etcd3 } from 'etcd3';
import { etcdFailure, EXIT } from './cli-errors.js';
import type { Connection } from './connection.js';
import { instanceRow, listedInstanceRow, type ListedInstanceRow } from './instance-row.js';
import { leaseTtls } from './lease-ttls.js';
import { formatAge, note, out, table } from './output.js';
import { readRegistry, type RegistrySnapshot } from './registry-snapshot.js';

export interface LsOptions {
  readonly service?: string;
  readonly json: boolean;
}

export async function lsCommand(connection: Connection, options: LsOptions): Promise<number> {
  const client = connection.connect();
  try {
    const { snapshot, rows } = await listInstances(client, connection, options.service).catch((error: unknown) => {
      throw etcdFailure(connection.options.etcd.hosts, error);
    });
    const skipped = snapshot.services.flatMap((service) => [...service.list.skipped.keys()].map((key) => ({ service: service.service, key, reason: service.list.skipped.get(key)! })));
    if (options.json) {
      out(JSON.stringify({ namespace: snapshot.namespace, revision: snapshot.revision, instances: rows, skipped }));
      return EXIT.ok;
    }
    const scope = options.service === undefined ? `${snapshot.namespace}/` : `${snapshot.namespace}/${options.service}/`;
    if (rows.length === 0) out(`no instances under ${scope}`);
    else {
      out(table(['service', 'instance', 'address', 'zone', 'version', 'weight', 'age', 'ttl'], rows.map(tableRow)));
      const services = new Set(rows.map((row) => row.service)).size;
      out(`${rows.length} instance${rows.length === 1 ? '' : 's'} of ${services} service${services === 1 ? '' : 's'} under ${scope} at revision ${snapshot.revision}`);
    }
    if (skipped.length > 0) note(`${skipped.length} key${skipped.length === 1 ? ' is' : 's are'} skipped by clients; "check" says why`);
    return EXIT.ok;
  } finally {
    client.close();
  }
}

async function listInstances(client: Etcd3, connection: Connection, service?: string): Promise<{ snapshot: RegistrySnapshot; rows: ListedInstanceRow[] }> {
  const snapshot = await readRegistry(client, connection.options.namespace, connection.policy, service);
  const listedByKey = new Map(snapshot.services.flatMap((listing) => listing.keys.map((listed) => [listed.key, listed] as const)));
  const instances = snapshot.services.flatMap((listing) => listing.list.instances.map((instance) => instanceRow(listing.service, instance)));
  const ttls = await leaseTtls(client, instances.map((row) => listedByKey.get(row.key)!.lease));
  const now = Date.now();
  return { snapshot, rows: instances.map((row) => listedInstanceRow(row, listedByKey.get(row.key)!, ttls, now)) };
}

function tableRow(row: ListedInstanceRow): string[] {
  const ttl = row.leaseTtlSeconds === null ? '-' : row.leaseTtlSeconds < 0 ? 'expired' : `${row.leaseTtlSeconds}s`;
  return [row.service, row.id, row.address, row.zone ?? '-', row.version ?? '-', String(row.weight), row.ageSeconds === null ? '-' : formatAge(row.ageSeconds), ttl];
}

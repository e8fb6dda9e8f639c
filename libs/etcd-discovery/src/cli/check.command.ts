import { etcdFailure, EXIT } from './cli-errors.js';
import type { Connection } from './connection.js';
import { out, table } from './output.js';
import { findProblems } from './registry-findings.js';
import { readRegistry } from './registry-snapshot.js';

export interface CheckOptions {
  readonly service?: string;
  readonly json: boolean;
}

export async function checkCommand(connection: Connection, options: CheckOptions): Promise<number> {
  const client = connection.connect();
  try {
    const snapshot = await readRegistry(client, connection.options.namespace, connection.policy, options.service).catch((error: unknown) => {
      throw etcdFailure(connection.options.etcd.hosts, error);
    });
    const findings = findProblems(snapshot);
    const keys = snapshot.stray.length + snapshot.services.reduce((sum, service) => sum + service.keys.length, 0);
    const scope = options.service === undefined ? `${snapshot.namespace}/` : `${snapshot.namespace}/${options.service}/`;
    if (options.json) {
      out(JSON.stringify({ namespace: snapshot.namespace, revision: snapshot.revision, keys, services: snapshot.services.length, findings }));
    } else if (findings.length === 0) {
      out(`clean: ${keys} key${keys === 1 ? '' : 's'} under ${scope} at revision ${snapshot.revision}, no finding`);
    } else {
      out(table(['finding', 'key', 'detail'], findings.map((item) => [item.kind, item.key, item.detail])));
      out(`${findings.length} finding${findings.length === 1 ? '' : 's'} in ${keys} key${keys === 1 ? '' : 's'} under ${scope} at revision ${snapshot.revision}`);
    }
    return findings.length === 0 ? EXIT.ok : EXIT.findings;
  } finally {
    client.close();
  }
}

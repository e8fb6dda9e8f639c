// The scenario's own etcd3 client, for writes too many or too large for the test's HTTP view (batched writes live in
// test/support/etcd-batches.ts).
import { Etcd3 } from 'etcd3';
import type { Scenario } from './scenario.js';

/** A plain etcd3 client on the scenario's etcd, closed with the scenario. */
export function outsider(s: Scenario): Etcd3 {
  const client = new Etcd3({ hosts: s.endpoints });
  s.defer(() => client.close());
  return client;
}

/** Deletes every key under `prefix` in one request. */
export async function deletePrefix(client: Etcd3, prefix: string): Promise<number> {
  const response = await client.delete().prefix(prefix).exec();
  return Number(response.deleted);
}

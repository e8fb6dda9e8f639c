// Many keys at once from a plain etcd3 client: etcd takes at most 128 operations per transaction, so writes go in
// batches, each batch one revision (one watch response for every client following the prefix).
import type { Etcd3 } from 'etcd3';

/** etcd's limit on operations per transaction. */
export const MAX_TXN_OPS = 128;

/** Puts every entry, `batchSize` per transaction, one transaction at a time; resolves with the batches written. */
export async function putInBatches(
  client: Etcd3,
  entries: ReadonlyArray<readonly [string, string | Buffer]>,
  batchSize = MAX_TXN_OPS,
): Promise<number> {
  if (batchSize > MAX_TXN_OPS) throw new Error(`etcd refuses more than ${MAX_TXN_OPS} operations per transaction`);
  let batches = 0;
  for (let index = 0; index < entries.length; index += batchSize) {
    const success = entries.slice(index, index + batchSize).map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }));
    await client.kv.txn({ success });
    batches += 1;
  }
  return batches;
}

/** Deletes each key, `batchSize` per transaction. */
export async function deleteInBatches(client: Etcd3, keys: readonly string[], batchSize = MAX_TXN_OPS): Promise<void> {
  if (batchSize > MAX_TXN_OPS) throw new Error(`etcd refuses more than ${MAX_TXN_OPS} operations per transaction`);
  for (let index = 0; index < keys.length; index += batchSize) {
    const success = keys.slice(index, index + batchSize).map((key) => ({ request_delete_range: { key: Buffer.from(key) } }));
    await client.kv.txn({ success });
  }
}

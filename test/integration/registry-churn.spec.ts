// A writer rewriting one key as fast as etcd takes it, beside 3,000 records: the client rebuilds the list at most
// once per REBUILD_INTERVAL_MS, logs at most its membership-line budget, ends on the last write, and keeps serving
// lists to everyone else. Before, every write rebuilt all 3,000 records and logged one line.
import { describe, expect, it } from 'vitest';
import { DiscoveryHub } from '../../libs/etcd-discovery/src/discovery/discovery-hub.js';
import { REBUILD_INTERVAL_MS } from '../../libs/etcd-discovery/src/discovery/service-watcher.js';
import { AddressPolicy } from '../../libs/etcd-discovery/src/registry/address-policy.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { discoveryOptions, record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { putInBatches } from '../support/etcd-batches.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const logs = recordLogs();
const fx = useEtcd();

const RECORDS = 3_000;
const WRITES = 600;

describe('one key rewritten as fast as etcd takes it', () => {
  it(`beside ${RECORDS} records: rebuilds bounded by time, log lines bounded, the last write wins`, async () => {
    const namespace = uniqueNamespace('churn');
    const prefix = `${namespace}/svc/`;
    const records = Array.from({ length: RECORDS }, (_, n) => [`${prefix}r-${String(n).padStart(4, '0')}`, record(`10.1.${n >> 8}.${n & 255}:50051`)] as const);
    await putInBatches(fx.outsider, records, 100);
    const client = createEtcdClient(discoveryOptions(fx.etcd.endpoint, namespace).etcd);
    const hub = new DiscoveryHub(client, namespace, new AddressPolicy());
    const emissions: { at: number; list: readonly ServiceInstance[] }[] = [];
    const subscription = hub.watch('svc').subscribe((list) => emissions.push({ at: performance.now(), list }));
    try {
      await waitFor(() => emissions.at(-1)?.list.length === RECORDS, 10_000, { what: 'the first list' });
      const mark = logs.lines.length;
      const before = emissions.length;
      const startedAt = performance.now();
      let last = 0;
      // Flaps between a valid record (a membership change each time) and garbage, from 8 writers at once.
      await Promise.all(
        Array.from({ length: 8 }, async (_, writer) => {
          for (let n = writer; n < WRITES; n += 8) {
            last = Math.max(last, n);
            await fx.outsider.put(`${prefix}flap`).value(n % 3 === 0 ? '{"Addr":' : record('10.9.9.9:1', { n }));
          }
        }),
      );
      await fx.outsider.put(`${prefix}flap`).value(record('10.9.9.9:1', { n: 'final' }));
      const writeMs = performance.now() - startedAt;
      await waitFor(() => emissions.at(-1)?.list.find((instance) => instance.id === 'flap')?.metadata.n === 'final', 5_000, {
        what: 'the final write listed',
      });
      const rebuilds = emissions.length - before;
      const elapsed = emissions.at(-1)!.at - startedAt;
      const lines = logs.lines.slice(mark).filter((line) => line.context === 'EtcdDiscovery');
      const membership = lines.filter((line) => /svc: [+~-]|more membership changes/.test(line.message));
      const skips = lines.filter((line) => line.message.includes('skipping'));
      console.log(
        `[churn] ${WRITES + 1} writes in ${Math.round(writeMs)} ms: ${rebuilds} lists published over ${Math.round(elapsed)} ms, ` +
          `${membership.length} membership lines, ${skips.length} skip lines`,
      );
      // One rebuild per interval at most, plus the leading one.
      expect(rebuilds).toBeLessThanOrEqual(Math.ceil(elapsed / REBUILD_INTERVAL_MS) + 2);
      expect(rebuilds).toBeLessThan(WRITES / 3);
      // 20 lines per 10 s window plus one summary per window.
      expect(membership.length).toBeLessThanOrEqual(21 * Math.ceil((elapsed + 1) / 10_000) + 1);
      expect(skips).toHaveLength(1);
      expect(emissions.at(-1)!.list).toHaveLength(RECORDS + 1);
    } finally {
      subscription.unsubscribe();
      hub.close();
      client.close();
    }
  });
});

describe('a revision etcd splits into fragments', () => {
  it('is applied whole: clients never see a list that never existed in etcd', async () => {
    const namespace = uniqueNamespace('fragments');
    const prefix = `${namespace}/svc/`;
    await fx.outsider.put(`${prefix}a1`).value(record('10.2.0.1:50051'));
    // Keys of 700 KB sorting between a1 and b: delete events carry their keys (not their values), so deleting these
    // makes one revision of over 2 MB from a request of a few bytes.
    for (let n = 0; n < 3; n += 1) await fx.outsider.put(`${prefix}a2-${n}-${'k'.repeat(700 * 1024)}`).value('v');
    const client = createEtcdClient(discoveryOptions(fx.etcd.endpoint, namespace).etcd);
    const hub = new DiscoveryHub(client, namespace, new AddressPolicy());
    const lists: string[][] = [];
    const subscription = hub.watch('svc').subscribe((list) => lists.push(list.map((instance) => instance.id)));
    try {
      await waitFor(() => lists.at(-1)?.join() === 'a1', 10_000, { what: 'the first list' });
      // One revision: a1 and the big keys deleted, zB put. Its watch response is over etcd's 1.5 MiB: etcd sends it in fragments.
      await fx.outsider.kv.txn({
        success: [
          { request_delete_range: { key: Buffer.from(`${prefix}a`), range_end: Buffer.from(`${prefix}b`) } },
          { request_put: { key: Buffer.from(`${prefix}zB`), value: Buffer.from(record('10.2.0.2:50051')) } },
        ],
      });
      await waitFor(() => lists.at(-1)?.join() === 'zB', 10_000, { what: 'zB listed' });
      expect(lists.filter((list) => list.length === 0)).toEqual([]);
    } finally {
      subscription.unsubscribe();
      hub.close();
      client.close();
    }
  });
});

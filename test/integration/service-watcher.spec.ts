// DiscoveryHub.watch(service) against a real etcd: the initial list, live changes, compaction,
// falling behind a compaction while cut off, and an etcd restart (the last list is kept meanwhile).
import type { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { compact, record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { useEtcd } from '../support/use-etcd.js';
import { holdsFor, waitFor } from '../support/wait.js';
import { followService, type FollowedService } from './follow-service.js';

const logs = recordLogs();
const fx = useEtcd();

/** Addresses of every key under `prefix` as etcd holds them now (tests here write only valid records). */
async function etcdAddresses(client: Etcd3, prefix: string): Promise<string[]> {
  const values = await client.getAll().prefix(prefix).sort('Key', 'Ascend').strings();
  return Object.values(values).map((value) => (JSON.parse(value) as { Addr: string }).Addr);
}

const sameList = (followed: FollowedService, expected: string[]) => () =>
  JSON.stringify(followed.addresses()) === JSON.stringify(expected);

describe('service watcher (DiscoveryHub.watch) against real etcd', () => {
  it('lists what is there at start, then follows puts, updates and deletes from outside', async () => {
    const ns = uniqueNamespace('watch');
    const prefix = `${ns}/svc/`;
    await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001', { v: 1 }));
    await fx.outsider.put(`${prefix}a2`).value(record('127.0.0.1:7002'));
    // Neighbours that share a string prefix but are other services.
    await fx.outsider.put(`${ns}/svc-b/b1`).value(record('127.0.0.1:7501'));
    await fx.outsider.put(`${ns}/svcx`).value(record('127.0.0.1:7502'));

    const followed = followService(fx, ns, 'svc');
    await waitFor(() => followed.latest(), 2_000, { what: 'the initial list' });
    expect(followed.emissions).toHaveLength(1);
    expect(followed.latest()).toEqual([
      { id: 'a1', key: `${prefix}a1`, address: '127.0.0.1:7001', host: '127.0.0.1', port: 7001, metadata: { v: 1 } },
      { id: 'a2', key: `${prefix}a2`, address: '127.0.0.1:7002', host: '127.0.0.1', port: 7002, metadata: {} },
    ]);

    await fx.outsider.put(`${prefix}a3`).value(record('127.0.0.1:7003'));
    await waitFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003']), 1_000, { what: 'a3 added' });

    await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001', { v: 2 }));
    await waitFor(() => followed.latest()?.[0].metadata.v === 2, 1_000, { what: 'a1 metadata updated' });

    await fx.outsider.delete().key(`${prefix}a2`);
    await waitFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7003']), 1_000, { what: 'a2 removed' });

    await fx.outsider.delete().key(`${prefix}a1`);
    await fx.outsider.delete().key(`${prefix}a3`);
    await waitFor(sameList(followed, []), 1_000, { what: 'an empty list once every instance is deleted' });
    expect(followed.errors).toEqual([]);
  });

  it('keeps following after a compaction while watching', async () => {
    const ns = uniqueNamespace('compact');
    const prefix = `${ns}/svc/`;
    await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001', { v: 0 }));
    const followed = followService(fx, ns, 'svc');
    await waitFor(sameList(followed, ['127.0.0.1:7001']), 2_000, { what: 'the initial list' });

    for (let v = 1; v <= 10; v++) await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001', { v }));
    await waitFor(() => followed.latest()?.[0]?.metadata.v === 10, 1_000, { what: 'the tenth update' });
    await compact(fx.etcd.endpoint);

    await fx.outsider.put(`${prefix}a2`).value(record('127.0.0.1:7002'));
    await fx.outsider.delete().key(`${prefix}a1`);
    await fx.outsider.put(`${prefix}a3`).value(record('127.0.0.1:7003'));
    await waitFor(sameList(followed, ['127.0.0.1:7002', '127.0.0.1:7003']), 1_000, { what: 'changes after the compaction' });
    expect(followed.errors).toEqual([]);
  });

  it('catches up after falling behind a compaction while cut off from etcd, keeping its last list meanwhile', async () => {
    const ns = uniqueNamespace('behind');
    const prefix = `${ns}/svc/`;
    const proxy = await startFaultProxy(fx.etcd.endpoint);
    fx.cleanup.add(() => proxy.close());
    await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001'));
    await fx.outsider.put(`${prefix}a2`).value(record('127.0.0.1:7002'));
    const followed = followService(fx, ns, 'svc', proxy.endpoint);
    await waitFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7002']), 2_000, { what: 'the initial list' });
    const mark = logs.lines.length;

    await proxy.cut();
    await waitFor(() => logs.lines.slice(mark).some((line) => line.level === 'warn' && line.message.includes(prefix)), 2_000, {
      what: 'the watcher noticing the cut',
    });
    // While cut off, etcd moves on and compacts away the revisions the watcher has not seen.
    await fx.outsider.delete().key(`${prefix}a1`);
    for (let v = 1; v <= 5; v++) await fx.outsider.put(`${prefix}a2`).value(record('127.0.0.1:7002', { v }));
    await fx.outsider.put(`${prefix}a3`).value(record('127.0.0.1:7003'));
    await compact(fx.etcd.endpoint);
    await holdsFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7002']), 1_000, { what: 'the last list kept while cut off' });

    await proxy.pass();
    await waitFor(sameList(followed, await etcdAddresses(fx.outsider, prefix)), 3_000, { what: 'the list to match etcd after the heal' });
    expect(followed.latest()?.find((instance) => instance.id === 'a2')?.metadata).toEqual({ v: 5 });

    // And the watch is live again.
    await fx.outsider.put(`${prefix}a4`).value(record('127.0.0.1:7004'));
    await waitFor(sameList(followed, ['127.0.0.1:7002', '127.0.0.1:7003', '127.0.0.1:7004']), 1_000, { what: 'a4 after the heal' });
    expect(followed.emissions.every((list) => list.length > 0)).toBe(true);
    expect(followed.errors).toEqual([]);
  });

  it('survives an etcd restart: keeps the last list while etcd is down, then matches etcd after changes made right after', async () => {
    const ns = uniqueNamespace('restart');
    const prefix = `${ns}/svc/`;
    await fx.outsider.put(`${prefix}a1`).value(record('127.0.0.1:7001'));
    await fx.outsider.put(`${prefix}a2`).value(record('127.0.0.1:7002'));
    const followed = followService(fx, ns, 'svc');
    await waitFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7002']), 2_000, { what: 'the initial list' });

    await fx.etcd.stop();
    await holdsFor(sameList(followed, ['127.0.0.1:7001', '127.0.0.1:7002']), 2_000, { what: 'the last list kept while etcd is down' });
    await fx.etcd.restart();
    fx.renewOutsider();
    await fx.outsider.delete().key(`${prefix}a1`);
    await fx.outsider.put(`${prefix}a3`).value(record('127.0.0.1:7003'));

    const expected = await etcdAddresses(fx.outsider, prefix);
    expect(expected).toEqual(['127.0.0.1:7002', '127.0.0.1:7003']);
    await waitFor(sameList(followed, expected), 3_000, { what: 'the list to match etcd after the restart' });
    await fx.outsider.put(`${prefix}a4`).value(record('127.0.0.1:7004'));
    await waitFor(sameList(followed, [...expected, '127.0.0.1:7004']), 1_000, { what: 'a4 after the restart' });
    expect(followed.emissions.every((list) => list.length > 0)).toBe(true);
    expect(followed.errors).toEqual([]);
  });
});

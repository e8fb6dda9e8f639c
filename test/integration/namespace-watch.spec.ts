// DiscoveryHub following many services through ONE watch on the namespace, against a real etcd: one watcher in etcd
// (its own etcd_debugging_mvcc_watcher_total) instead of one per service, the move from per-service watches and back
// under churn without an empty list, a lost change or a step back, garbage in one service (or in one nobody follows)
// kept out of the others, per-prefix caps with one shared watch, and etcd refusing the namespace (RBAC) -> a watch per
// service again, every service listed.
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Etcd3, Range, type IKeyValue } from 'etcd3';
import type { Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import { DiscoveryHub } from '../../libs/etcd-discovery/src/discovery/discovery-hub.js';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import { DEFAULT_NAMESPACE_WATCH_FROM as NAMESPACE_WATCH_FROM } from '../../libs/etcd-discovery/src/options/defaults.js';
import type { DiscoveryState } from '../../libs/etcd-discovery/src/discovery/discovery-state.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { AddressPolicy } from '../../libs/etcd-discovery/src/registry/address-policy.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import type { MirrorFeed, MirrorSnapshot } from '../../libs/etcd-discovery/src/registry/prefix-mirror.js';
import { PrefixMirrorSet } from '../../libs/etcd-discovery/src/registry/prefix-mirror-set.js';
import { entriesOf } from '../../libs/etcd-discovery/src/registry/prefix-mirror-store.js';
import { discoveryOptions, record, recordLogs, startEtcd, uniqueNamespace } from '../support/etcd.js';
import { putInBatches } from '../support/etcd-batches.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, waitFor } from '../support/wait.js';

const logs = recordLogs();
const fx = useEtcd();

/** etcd's own count of watchers (every client's), from its /metrics. */
async function etcdWatchers(endpoint = fx.etcd.endpoint): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  return Number(/^etcd_debugging_mvcc_watcher_total (\S+)$/m.exec(text)?.[1] ?? NaN);
}

/** Range requests etcd has answered (every client's). */
async function etcdRanges(endpoint = fx.etcd.endpoint): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  return Number(/^grpc_server_handled_total\{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/** The watchers of earlier tests' clients are cancelled asynchronously: wait until etcd has none (nothing else here watches). */
async function noWatchers(): Promise<number> {
  await waitFor(async () => (await etcdWatchers()) === 0, 10_000, { what: 'no watcher left in etcd' });
  return 0;
}

const name = (k: number): string => `svc-${String(k).padStart(3, '0')}`;

interface Followed {
  readonly hub: DiscoveryHub;
  /** Every list emitted, per service. */
  readonly lists: Map<string, (readonly ServiceInstance[])[]>;
  /** Every state emitted, per service (`states()`, what the resolver reads). */
  readonly states: Map<string, DiscoveryState[]>;
  follow(service: string): void;
  unfollow(service: string): void;
  ids(service: string): string[] | undefined;
}

function followMany(namespace: string, options: ConstructorParameters<typeof DiscoveryHub>[3] = {}, client?: Etcd3): Followed {
  const etcd = client ?? createEtcdClient(discoveryOptions(fx.etcd.endpoint, namespace).etcd);
  const hub = new DiscoveryHub(etcd, namespace, new AddressPolicy(), options);
  const lists = new Map<string, (readonly ServiceInstance[])[]>();
  const states = new Map<string, DiscoveryState[]>();
  const subscriptions = new Map<string, Subscription[]>();
  fx.cleanup.add(() => etcd.close());
  fx.cleanup.add(() => hub.close());
  fx.cleanup.add(() => [...subscriptions.values()].flat().forEach((subscription) => subscription.unsubscribe()));
  return {
    hub,
    lists,
    states,
    follow(service) {
      lists.set(service, []);
      states.set(service, []);
      subscriptions.set(service, [
        hub.watch(service).subscribe((list) => lists.get(service)!.push(list)),
        hub.states(service).subscribe((state) => states.get(service)!.push(state)),
      ]);
    },
    unfollow(service) {
      for (const subscription of subscriptions.get(service) ?? []) subscription.unsubscribe();
      subscriptions.delete(service);
    },
    ids: (service) => lists.get(service)?.at(-1)?.map((instance) => instance.id),
  };
}

async function etcdIds(prefix: string): Promise<string[]> {
  const keys = await fx.outsider.getAll().prefix(prefix).keys();
  return keys.map((key) => key.slice(prefix.length)).sort();
}

describe('many services through one namespace watch', () => {
  it('one watcher in etcd and a handful of reads for 130 services; each lists its own records; garbage stays in its service, and nobody hears of services nobody follows', async () => {
    const namespace = uniqueNamespace('nswatch');
    const services = Array.from({ length: 130 }, (_, k) => name(k));
    const records = services.flatMap((service, k) => [0, 1, 2].map((i) => [`${namespace}/${service}/i${i}`, record(`10.3.${k}.${i + 1}:50051`, { k })] as const));
    const bad = `${namespace}/${name(1)}/`;
    await putInBatches(fx.outsider, [
      ...records,
      // In a followed service: a key too long to read, a nested key, a value that is no record.
      [`${bad}${'x'.repeat(600)}`, record('10.9.0.1:1')],
      [`${bad}nested/deeper`, record('10.9.0.2:1')],
      [`${bad}garbage`, '{"Addr":'],
      // In a service nobody follows, and beside the services.
      ...Array.from({ length: 50 }, (_, i) => [`${namespace}/unfollowed/g${i}`, `not a record ${i}`] as const),
      [`${namespace}/loose-key`, record('10.9.0.3:1')],
    ]);
    const watchersBefore = await noWatchers();
    const rangesBefore = await etcdRanges();

    const followed = followMany(namespace);
    // Followed in one go: all start on the namespace watch, none on a watch of its own first.
    for (const service of services) followed.follow(service);
    await waitFor(() => services.every((service) => followed.ids(service)?.length === 3), 10_000, { what: 'every service listing its 3 records' });
    expect(followed.hub.watchesNamespace).toBe(true);
    await waitFor(async () => (await etcdWatchers()) - watchersBefore === 1, 10_000, { what: 'one watcher in etcd for the client' });
    // One read of the namespace for all 130 (the revision, a count, one page), not one each.
    expect((await etcdRanges()) - rangesBefore).toBe(3);

    for (const [k, service] of services.entries()) {
      expect(followed.ids(service)).toEqual(['i0', 'i1', 'i2']);
      expect(followed.lists.get(service)!.at(-1)!.map((instance) => instance.metadata.k)).toEqual([k, k, k]);
      // One list each: moving to the namespace watch published nothing new.
      expect(followed.lists.get(service)).toHaveLength(1);
    }
    await waitFor(() => [...followed.hub.followed().values()].every((sync) => sync.watching), 5_000, { what: 'every service watching' });
    const health = followed.hub.followed();
    expect([...health.keys()].sort()).toEqual(services);
    expect([...health.values()].every((sync) => sync.instances === 3 && sync.unreachableReason === undefined)).toBe(true);

    // Live changes reach the right service and only it.
    await fx.outsider.put(`${namespace}/${name(5)}/i3`).value(record('10.3.5.4:50051'));
    await fx.outsider.delete().key(`${namespace}/${name(10)}/i0`);
    await waitFor(() => followed.ids(name(5))?.length === 4 && followed.ids(name(10))?.join() === 'i1,i2', 5_000, { what: 'a join and a leave' });
    expect(followed.lists.get(name(6))).toHaveLength(1);

    const lines = logs.lines.filter((line) => line.context === 'EtcdDiscovery');
    expect(lines.filter((line) => line.message.includes('unfollowed') || line.message.includes('loose-key'))).toEqual([]);
    const aboutBad = lines.filter((line) => line.level === 'warn' && line.message.includes(`${namespace}/${name(1)}/`));
    expect(aboutBad.filter((line) => line.message.includes('over 512 bytes'))).toHaveLength(1);
    expect(aboutBad.filter((line) => line.message.includes('nested/deeper'))).toHaveLength(1);
    expect(aboutBad.filter((line) => line.message.includes('garbage'))).toHaveLength(1);
  });

  it('moves to the namespace watch and back under churn: no empty list, no lost change, no step back', { timeout: 30_000 }, async () => {
    const namespace = uniqueNamespace('handover');
    const services = Array.from({ length: NAMESPACE_WATCH_FROM + 8 }, (_, k) => name(k));
    const [first, trigger, later] = [services.slice(0, NAMESPACE_WATCH_FROM - 1), services[NAMESPACE_WATCH_FROM - 1], services.slice(NAMESPACE_WATCH_FROM)];
    await putInBatches(fx.outsider, services.flatMap((service, k) => [0, 1].map((i) => [`${namespace}/${service}/stable-${i}`, record(`10.4.${k}.${i + 1}:50051`)] as const)));
    // A large service lists in pages (three round trips): changes made after the first page arrive while it lists.
    const large = later[0];
    await putInBatches(fx.outsider, Array.from({ length: 2_500 }, (_, n) => [`${namespace}/${large}/bulk-${String(n).padStart(4, '0')}`, record(`10.7.${n >> 8}.${n & 255}:50051`)] as const));
    const watchersBefore = await noWatchers();
    const followed = followMany(namespace, { lingerMs: 50 });
    // One below the threshold: a watch per service.
    for (const service of first) followed.follow(service);
    await waitFor(() => first.every((service) => followed.ids(service)?.length === 2), 10_000, { what: 'the first lists' });
    expect(followed.hub.watchesNamespace).toBe(false);
    await waitFor(async () => (await etcdWatchers()) - watchersBefore === NAMESPACE_WATCH_FROM - 1, 10_000, { what: 'a watch per service' });

    // A writer per service adds a churn instance and removes the one before, as fast as etcd takes it: every
    // change unique, and changes land while each service is being listed for its new watch.
    let phase = 0;
    const churn = () => {
      phase += 1;
      const tag = phase;
      let writing = true;
      let written = 0;
      const writers = services.map(async (service, k) => {
        let previous: string | undefined;
        for (let n = 0; writing; n += 1) {
          const key = `${namespace}/${service}/churn-${tag}-${String(n).padStart(5, '0')}`;
          // An address of its own: a later record for a listed address is skipped as a duplicate.
          await fx.outsider.put(key).value(record(`10.5.${k}.${tag}:${10_000 + n}`));
          if (previous) await fx.outsider.delete().key(previous);
          previous = key;
          written += 1;
        }
      });
      return async () => {
        writing = false;
        await Promise.all(writers);
        return written;
      };
    };
    const matchEtcd = async (names: readonly string[]) => {
      for (const service of names) {
        const prefix = `${namespace}/${service}/`;
        await waitFor(async () => JSON.stringify(followed.ids(service)) === JSON.stringify(await etcdIds(prefix)), 5_000, { what: `${service} matching etcd` });
      }
    };

    let stop = churn();
    try {
      await sleep(200);
      followed.follow(trigger);
      await waitFor(() => followed.hub.watchesNamespace && followed.ids(trigger)?.length, 5_000, { what: 'the namespace watch' });
      await waitFor(async () => (await etcdWatchers()) - watchersBefore === 1, 10_000, { what: 'the per-service watches handed over and gone' });
      // Services followed while the namespace watch runs list while their changes stream in.
      for (const service of later) followed.follow(service);
      await waitFor(() => later.every((service) => followed.ids(service)?.length), 5_000, { what: 'the later services listed' });
      await sleep(200);
    } finally {
      expect(await stop()).toBeGreaterThan(100);
    }
    // Every change made while the services moved is in their lists: nothing lost on the way.
    await matchEtcd(services);

    stop = churn();
    try {
      // Back below half the threshold: a watch per service again, under churn.
      for (const service of services.slice(8)) followed.unfollow(service);
      await waitFor(() => !followed.hub.watchesNamespace, 5_000, { what: 'the hub leaving the namespace watch' });
      await waitFor(async () => (await etcdWatchers()) - watchersBefore === 8, 10_000, { what: 'eight watches of their own' });
      await sleep(200);
    } finally {
      expect(await stop()).toBeGreaterThan(100);
    }
    await matchEtcd(services.slice(0, 8));
    for (const service of services) {
      const lists = followed.lists.get(service)!;
      // The stable records are in every list ever published: no empty list, no list without them.
      expect(lists.every((list) => ['stable-0', 'stable-1'].every((id) => list.some((instance) => instance.id === id)))).toBe(true);
      // A churn instance, once gone from the list, never comes back: no step back in time.
      const gone = new Set<string>();
      let previous = new Set<string>();
      for (const list of lists) {
        const now = new Set(list.map((instance) => instance.id));
        for (const id of previous) if (!now.has(id)) gone.add(id);
        for (const id of now) expect(gone.has(id), `${service}: ${id} came back`).toBe(false);
        previous = now;
      }
      // Lists only: no "unlisted" state, no error, once listed.
      expect(followed.states.get(service)!.every((state) => state.kind === 'listed')).toBe(true);
    }
  });

  it('the module option `namespaceWatchFrom`: 0 keeps a watch per service past the default threshold, 3 moves to one namespace watch at the third service', async () => {
    const watchersFor = async (namespaceWatchFrom: number, count: number): Promise<{ watchers: number; namespaceWatch: boolean }> => {
      const namespace = uniqueNamespace(`watch-from-${namespaceWatchFrom}`);
      const services = Array.from({ length: count }, (_, k) => name(k));
      await putInBatches(fx.outsider, services.map((service, k) => [`${namespace}/${service}/a`, record(`10.6.${k}.1:50051`)] as const));
      await noWatchers();
      const app = await NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot({ etcd: { hosts: [fx.etcd.endpoint] }, namespace, namespaceWatchFrom }), {
        // The file's log recorder stays Nest's logger (`logger: false` would replace it for the tests after this one).
        logger: logs,
      });
      try {
        const factory = app.get(ClientFactory);
        const lists = new Map<string, number>();
        const subscriptions = services.map((service) => factory.instances(service).subscribe((list) => lists.set(service, list.length)));
        await waitFor(() => services.every((service) => lists.get(service) === 1), 10_000, { what: `${count} services listed` });
        // Watchers stay open while followed: the count settles at its final value.
        await sleep(300);
        const result = { watchers: await etcdWatchers(), namespaceWatch: app.get(DiscoveryHub).watchesNamespace };
        for (const subscription of subscriptions) subscription.unsubscribe();
        return result;
      } finally {
        await app.close();
      }
    };
    expect(await watchersFor(0, NAMESPACE_WATCH_FROM + 4)).toEqual({ watchers: NAMESPACE_WATCH_FROM + 4, namespaceWatch: false });
    expect(await watchersFor(3, 2)).toEqual({ watchers: 2, namespaceWatch: false });
    expect(await watchersFor(3, 3)).toEqual({ watchers: 1, namespaceWatch: true });
  });

  it('falls back to a watch per service, every service listed, when etcd refuses the namespace (RBAC on service prefixes only)', { timeout: 30_000 }, async () => {
    const secured = await startEtcd();
    fx.cleanup.add(() => secured.destroy());
    const namespace = '/rbac';
    const services = Array.from({ length: NAMESPACE_WATCH_FROM + 2 }, (_, k) => name(k));
    const admin = new Etcd3({ hosts: [secured.endpoint] });
    fx.cleanup.add(() => admin.close());
    await putInBatches(admin, services.map((service, k) => [`${namespace}/${service}/a`, record(`10.6.0.${k + 1}:50051`)] as const));
    await admin.role('root').create();
    await admin.user('root').create('root-pw');
    await admin.user('root').addRole('root');
    await admin.role('services').create();
    for (const service of services) await admin.role('services').grant({ permission: 'Read', range: Range.prefix(`${namespace}/${service}/`) });
    await admin.user('app').create('app-pw');
    await admin.user('app').addRole('services');
    await admin.auth.authEnable();

    const client = createEtcdClient(discoveryOptions(secured.endpoint, namespace, { etcd: { hosts: [secured.endpoint], auth: { username: 'app', password: 'app-pw' } } }).etcd);
    const followed = followMany(namespace, {}, client);
    for (const service of services) followed.follow(service);
    await waitFor(() => services.every((service) => followed.ids(service)?.join() === 'a'), 15_000, { what: 'every service listed' });
    await waitFor(() => logs.lines.some((line) => line.message.includes(`etcd refuses a watch on ${namespace}/`)), 5_000, { what: 'the refusal' });
    expect(followed.hub.watchesNamespace).toBe(false);
    await waitFor(() => [...followed.hub.followed().values()].every((sync) => sync.watching), 10_000, { what: 'every service watching' });
    // Nobody was told "permission denied" on the way.
    expect(services.every((service) => followed.states.get(service)!.every((state) => state.kind === 'listed'))).toBe(true);
  });
});

describe('one watch, per-prefix rules (PrefixMirrorSet)', () => {
  const logger = new Logger('NamespaceWatchTest');

  function member(set: PrefixMirrorSet<string>, segment: string): { feed: MirrorFeed<string>; keys(): string[]; snapshots: MirrorSnapshot<string>[] } {
    const snapshots: MirrorSnapshot<string>[] = [];
    const feed = set.member(segment, { mirrorChanged: (_feed, snapshot) => snapshots.push(new Map(snapshot)), mirrorListFailed: () => undefined });
    feed.start();
    fx.cleanup.add(() => feed.stop());
    return { feed, snapshots, keys: () => [...feed.current.keys()].map((key) => key.slice(set.parent.length + segment.length + 1)).sort() };
  }

  it('lists many waiting prefixes in one read of their parent, and one by one when the parent holds far more keys than they do', async () => {
    const client = createEtcdClient(discoveryOptions(fx.etcd.endpoint, '/unused').etcd);
    fx.cleanup.add(() => client.close());
    const segments = ['a', 'b', 'c', 'd', 'e', 'f'];
    const listAll = async (junk: number): Promise<number> => {
      const parent = `${uniqueNamespace('together')}/`;
      await putInBatches(fx.outsider, [
        ...segments.flatMap((segment) => [0, 1].map((i) => [`${parent}${segment}/k${i}`, `${segment}${i}`] as const)),
        ...Array.from({ length: junk }, (_, i) => [`${parent}nobody/j${i}`, 'junk'] as const),
      ]);
      const rangesBefore = await etcdRanges();
      const set = new PrefixMirrorSet<string>(client, { parent, makeEntry: entriesOf((_key: string, kv: IKeyValue) => kv.value.toString()), logger, listTogetherFrom: 4 });
      const members = segments.map((segment) => member(set, segment));
      await waitFor(() => members.every((one) => one.keys().join() === 'k0,k1'), 5_000, { what: 'every member listed' });
      expect(members.every((one) => one.snapshots.length === 1)).toBe(true);
      return (await etcdRanges()) - rangesBefore;
    };
    // The revision, a count of the parent, one page: 3 reads for 6 prefixes.
    expect(await listAll(0)).toBe(3);
    // 400 keys nobody follows are more than 50 per waiting prefix: the revision, the count, then a read per prefix.
    expect(await listAll(400)).toBe(2 + segments.length);
  });

  it('keeps each member within its own caps, takes keys in once room frees, and never stores what nobody follows', { timeout: 20_000 }, async () => {
    const parent = `${uniqueNamespace('set')}/`;
    await putInBatches(fx.outsider, [
      ...Array.from({ length: 8 }, (_, i) => [`${parent}a/k${i}`, `a${i}`] as const),
      [`${parent}b/k0`, 'b0'],
      [`${parent}b/${'y'.repeat(700)}`, 'overlong'],
    ]);
    const client = createEtcdClient(discoveryOptions(fx.etcd.endpoint, '/unused').etcd);
    fx.cleanup.add(() => client.close());
    const set = new PrefixMirrorSet<string>(client, { parent, makeEntry: entriesOf((_key: string, kv: IKeyValue) => kv.value.toString()), logger, maxEntries: 5 });
    const a = member(set, 'a');
    const b = member(set, 'b');
    await waitFor(() => a.feed.listed && b.feed.listed && a.feed.watching, 5_000, { what: 'both listed and watching' });
    expect(a.keys()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(b.keys()).toEqual(['k0']);
    const capLines = () => logs.lines.filter((line) => line.message.includes(`${parent}a/`) && line.message.includes('maxEntries cap'));
    expect(capLines()).toHaveLength(1);

    // Writes nobody follows: 100 KB values in a third prefix. None is stored, none reaches a member.
    await putInBatches(fx.outsider, Array.from({ length: 20 }, (_, i) => [`${parent}c/big${i}`, 'z'.repeat(100 * 1024)] as const), 5);
    await fx.outsider.put(`${parent}b/k1`).value('b1');
    await waitFor(() => b.keys().join() === 'k0,k1', 5_000, { what: 'b taking k1' });
    expect(b.snapshots.every((snapshot) => [...snapshot.keys()].every((key) => key.startsWith(`${parent}b/`)))).toBe(true);

    // Room freed in a: the keys the cap left out come in by a listing, b is left alone.
    await fx.outsider.delete().key(`${parent}a/k0`);
    await fx.outsider.delete().key(`${parent}a/k1`);
    await waitFor(() => a.keys().join() === 'k2,k3,k4,k5,k6', 8_000, { what: 'a re-listed up to its cap' });
    expect(capLines()).toHaveLength(1);
    expect(b.keys()).toEqual(['k0', 'k1']);
    expect(logs.lines.filter((line) => line.message.includes(`${parent}c/`))).toEqual([]);
    expect(logs.lines.filter((line) => line.message.includes(`${parent}b/`) && line.message.includes('over 512 bytes'))).toHaveLength(1);
  });
});

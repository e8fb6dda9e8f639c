// PrefixMirror at its limits, against a real etcd: values over grpc-js' receive limit, paging at one
// revision while etcd changes, per-prefix caps, consumers and decoders that throw, 100 watches over a
// slow link, and why a list failed (permission, unreachable).
import { Logger } from '@nestjs/common';
import { noop } from 'cockatiel';
import { Etcd3, Range, type IKeyValue } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import { describeEtcdFailure } from '../../libs/etcd-discovery/src/registry/etcd-failure.js';
import { PrefixMirror, type MirrorSnapshot, type PrefixMirrorOptions } from '../../libs/etcd-discovery/src/registry/prefix-mirror.js';
import { compact, discoveryOptions, record, recordLogs, startEtcd, uniqueNamespace } from '../support/etcd.js';
import { putInBatches } from '../support/etcd-batches.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, waitFor } from '../support/wait.js';

const logs = recordLogs();
const logger = new Logger('PrefixMirrorLimits');
const fx = useEtcd();

const MIB = 1024 * 1024;
const SMALL_VALUE_CHARS = 512;

/** Small values as text; big ones only as their size, so the test keeps no megabytes around. */
const describeValue = (_key: string, kv: IKeyValue): string =>
  kv.value.length <= SMALL_VALUE_CHARS ? kv.value.toString() : `<${kv.value.length} bytes>`;

interface Followed {
  readonly mirror: PrefixMirror<string>;
  /** Every snapshot handed to onChange, accepted or not. */
  readonly changes: MirrorSnapshot<string>[];
  readonly listFailures: string[];
  keys(): string[];
}

/** A started mirror of `prefix`, stopped after the test. */
function follow(client: Etcd3, prefix: string, extra: Partial<PrefixMirrorOptions<string>> = {}): Followed {
  const changes: MirrorSnapshot<string>[] = [];
  const listFailures: string[] = [];
  const mirror = new PrefixMirror<string>(client, {
    prefix,
    decode: describeValue,
    // The mirror hands over its live state: keep a copy.
    onChange: (snapshot) => changes.push(new Map(snapshot)),
    onListFailed: (reason) => listFailures.push(reason),
    logger,
    ...extra,
  });
  mirror.start();
  fx.cleanup.add(() => mirror.stop());
  return { mirror, changes, listFailures, keys: () => [...mirror.current.keys()].sort() };
}

/** The library's own etcd client (16 MiB receive limit, our fault handling), closed after the test. */
function libraryClient(endpoint = fx.etcd.endpoint): Etcd3 {
  const client = createEtcdClient(discoveryOptions(endpoint, '/unused').etcd);
  fx.cleanup.add(() => client.close());
  return client;
}

/** Puts `entries` from outside in transactions of 100. */
const putMany = (entries: ReadonlyArray<readonly [string, string | Buffer]>): Promise<number> => putInBatches(fx.outsider, entries, 100);

/** Keys under `prefix` at `revision`, straight from etcd. */
async function keysAt(prefix: string, revision: string): Promise<Map<string, string>> {
  const range = Range.prefix(prefix);
  const response = await fx.outsider.kv.range({ key: range.start, range_end: range.end, revision });
  return new Map(response.kvs.map((kv) => [kv.key.toString(), kv.mod_revision]));
}

const pad = (n: number): string => String(n).padStart(2, '0');

describe('prefix mirror: values over the receive limit', () => {
  it('lists five ~1 MiB values and the records beside them, where one plain getAll() fails', async () => {
    const prefix = `${uniqueNamespace('big')}/svc/`;
    const bigSizes = [1.0, 1.1, 1.2, 1.3, 1.45].map((mib) => Math.floor(mib * MIB));
    for (const [index, size] of bigSizes.entries()) await fx.outsider.put(`${prefix}big-${index}`).value(Buffer.alloc(size, 0x61));
    const normal = Array.from({ length: 20 }, (_, index) => [`${prefix}n-${pad(index)}`, record(`127.0.0.1:${7200 + index}`)] as const);
    await putMany(normal);

    // The problem exists: etcd3 with grpc-js' defaults cannot receive this prefix in one response.
    const plain = new Etcd3({ hosts: [fx.etcd.endpoint], faultHandling: { host: () => noop, global: noop } });
    fx.cleanup.add(() => plain.close());
    const failure = await plain.getAll().prefix(prefix).exec().then(() => undefined, (error: unknown) => error);
    expect(failure, 'a plain getAll() of > 4 MiB').toBeDefined();
    expect(describeEtcdFailure(failure)).toMatch(/^response too large: .*RESOURCE_EXHAUSTED/);

    const startedAt = performance.now();
    const followed = follow(libraryClient(), prefix);
    await waitFor(() => followed.changes.length > 0, 20_000, { what: 'the first list' });
    const listMs = performance.now() - startedAt;
    const first = followed.changes[0];
    expect(first.size).toBe(bigSizes.length + normal.length);
    for (const [key, value] of normal) expect(first.get(key)?.value).toBe(value);
    expect(first.get(`${prefix}big-4`)?.value).toBe(`<${bigSizes[4]} bytes>`);
    expect(followed.mirror.unreachableReason).toBeUndefined();
    console.info(`[measure] first list of ${(bigSizes.reduce((a, b) => a + b, 0) / MIB).toFixed(2)} MiB under one prefix: ${listMs.toFixed(0)} ms`);

    // Paging alone copes with grpc-js' default 4 MiB limit too: pages halve until they are received.
    const halved = follow(plain, prefix);
    await waitFor(() => halved.changes.length > 0, 20_000, { what: 'the first list on a 4 MiB client' });
    expect(halved.changes[0].size).toBe(bigSizes.length + normal.length);
  });
});

describe('prefix mirror: a paged list reads one revision', () => {
  it('deletes and puts made between pages do not tear the snapshot; they arrive as watch events', async () => {
    const prefix = `${uniqueNamespace('pages')}/svc/`;
    await putMany(Array.from({ length: 20 }, (_, index) => [`${prefix}k${pad(index)}`, `v${index}`] as const));
    const before = (await fx.outsider.get(`${prefix}k00`).exec()).header.revision;
    // 10 pages of 2 keys, each a 80 ms round trip through the proxy; the writes go straight to etcd.
    const proxy = await startFaultProxy(fx.etcd.endpoint, { mode: { delayMs: 40 } });
    fx.cleanup.add(() => proxy.close());
    let writes: Promise<number> | undefined;
    const followed = follow(libraryClient(proxy.endpoint), prefix, {
      maxPageKeys: 2,
      decode: (key, kv) => {
        // On the first page: remove a key already read, add one after the last page.
        writes ??= (async () => {
          await fx.outsider.delete().key(`${prefix}k00`);
          await fx.outsider.put(`${prefix}k99`).value('late');
          return performance.now();
        })();
        return describeValue(key, kv);
      },
    });
    await waitFor(() => followed.changes.length > 0, 20_000, { what: 'the first list' });
    const listedAt = performance.now();
    expect(writes, 'the writes started during the list').toBeDefined();
    const writtenAt = await writes!;
    expect(writtenAt, 'the writes finished before the last page').toBeLessThan(listedAt);

    const first = followed.changes[0];
    const atBefore = await keysAt(prefix, before);
    expect(new Map([...first].map(([key, entry]) => [key, entry.modRevision]))).toEqual(atBefore);
    expect(first.has(`${prefix}k00`)).toBe(true);
    expect(first.has(`${prefix}k99`)).toBe(false);

    await waitFor(() => !followed.mirror.current.has(`${prefix}k00`) && followed.mirror.current.get(`${prefix}k99`)?.value === 'late', 10_000, {
      what: 'the delete and the put through the watch',
    });
    expect(followed.keys()).toEqual([...Array.from({ length: 19 }, (_, index) => `${prefix}k${pad(index + 1)}`), `${prefix}k99`]);
  });
  it('a listing whose revision is compacted between pages starts over at once, without counting as a failure', async () => {
    const prefix = `${uniqueNamespace('compacted')}/svc/`;
    await putMany(Array.from({ length: 20 }, (_, index) => [`${prefix}k${pad(index)}`, `v${index}`] as const));
    const proxy = await startFaultProxy(fx.etcd.endpoint, { mode: { delayMs: 40 } });
    fx.cleanup.add(() => proxy.close());
    let compacted: Promise<number> | undefined;
    const followed = follow(libraryClient(proxy.endpoint), prefix, {
      maxPageKeys: 2,
      decode: (key, kv) => {
        compacted ??= (async () => {
          await fx.outsider.put(`${prefix}k99`).value('late');
          await compact(fx.etcd.endpoint);
          return performance.now();
        })();
        return describeValue(key, kv);
      },
    });
    await waitFor(() => followed.changes.length > 0, 20_000, { what: 'the first list' });
    const listedAt = performance.now();
    expect(await compacted!, 'compacted before the last page').toBeLessThan(listedAt);
    // Only a listing started after the compaction can hold k99: the first one was thrown away.
    expect(followed.changes[0].get(`${prefix}k99`)?.value).toBe('late');
    expect(followed.changes[0].size).toBe(21);
    expect(followed.listFailures).toEqual([]);
    expect(logs.count(`cannot list ${prefix}`)).toBe(0);
  });
});

describe('prefix mirror: per-prefix caps', () => {
  it('keeps the first maxEntries keys, warns once, takes keys in when room frees and says when it is back under', async () => {
    const prefix = `${uniqueNamespace('cap')}/svc/`;
    const key = (n: number): string => `${prefix}c${pad(n)}`;
    await putMany(Array.from({ length: 30 }, (_, n) => [key(n), `v${n}`] as const));
    const warnings = (): number => logs.count(`${prefix} holds more than its maxEntries cap (20 keys)`, 'warn');
    const backUnder = (): number => logs.count(`${prefix} is back under its maxEntries cap`, 'log');
    const followed = follow(libraryClient(), prefix, { maxEntries: 20 });

    await waitFor(() => followed.changes.length > 0, 10_000, { what: 'the first list' });
    expect(followed.keys()).toEqual(Array.from({ length: 20 }, (_, n) => key(n)));
    expect(warnings()).toBe(1);

    // New keys while over the cap: not kept, no new warning.
    for (let n = 30; n < 35; n += 1) await fx.outsider.put(key(n)).value(`v${n}`);
    await fx.outsider.put(key(5)).value('updated');
    await waitFor(() => followed.mirror.current.get(key(5))?.value === 'updated', 5_000, { what: 'the update of a kept key' });
    expect(followed.mirror.current.size).toBe(20);
    expect(followed.mirror.current.has(key(30))).toBe(false);

    // A kept key deleted: room for the next key in order.
    await fx.outsider.delete().key(key(0));
    await waitFor(() => followed.mirror.current.has(key(20)) && !followed.mirror.current.has(key(0)), 10_000, { what: 'c20 taken in' });
    expect(followed.keys()).toEqual(Array.from({ length: 20 }, (_, n) => key(n + 1)));
    expect(warnings()).toBe(1);
    expect(backUnder()).toBe(0);

    // Keys the cap left out deleted: back under, said once.
    for (let n = 21; n < 35; n += 1) await fx.outsider.delete().key(key(n));
    await waitFor(() => backUnder() === 1, 10_000, { what: 'the back-under line' });
    expect(followed.keys()).toEqual(Array.from({ length: 20 }, (_, n) => key(n + 1)));
    expect(warnings()).toBe(1);
  });

  it('keeps keys in order up to maxBytes of keys and values', async () => {
    const prefix = `${uniqueNamespace('capbytes')}/svc/`;
    await putMany(Array.from({ length: 10 }, (_, n) => [`${prefix}b${n}`, 'x'.repeat(1_000)] as const));
    const followed = follow(libraryClient(), prefix, { maxBytes: 5_500 });
    await waitFor(() => followed.changes.length > 0, 10_000, { what: 'the first list' });
    expect(followed.keys()).toEqual([0, 1, 2, 3, 4].map((n) => `${prefix}b${n}`));
    expect(logs.count(`${prefix} holds more than its maxBytes cap (5500 bytes of keys and values)`, 'warn')).toBe(1);
  });

  it('5,000 records of one service fit in the default caps', async () => {
    const prefix = `${uniqueNamespace('fivek')}/svc/`;
    const records = Array.from({ length: 5_000 }, (_, n) => [`${prefix}i-${String(n).padStart(4, '0')}`, record(`10.0.${n >> 8}.${n & 255}:50051`, { zone: 'eu-1', n })] as const);
    await putMany(records);
    const startedAt = performance.now();
    const followed = follow(libraryClient(), prefix);
    await waitFor(() => followed.changes.length > 0, 20_000, { what: 'the first list' });
    console.info(`[measure] first list of 5,000 records: ${(performance.now() - startedAt).toFixed(0)} ms`);
    expect(followed.mirror.current.size).toBe(5_000);
    expect(logs.count(`${prefix} holds more than`)).toBe(0);
  });
});

describe('prefix mirror: consumers and decoders that throw', () => {
  it('a throwing onChange logs one error, the process survives, and every later change offers the whole state', async () => {
    const prefix = `${uniqueNamespace('throw')}/svc/`;
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => void uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    fx.cleanup.add(() => process.off('uncaughtException', onUncaught));
    await fx.outsider.put(`${prefix}a`).value('1');
    let rejecting = true;
    const offered: string[][] = [];
    const mirror = new PrefixMirror<string>(libraryClient(), {
      prefix,
      decode: describeValue,
      onChange: (snapshot) => {
        offered.push([...snapshot.keys()]);
        if (rejecting && [...snapshot.keys()].some((key) => key.includes('boom'))) throw new Error('consumer exploded\n[fake] forged line');
      },
      logger,
    });
    mirror.start();
    fx.cleanup.add(() => mirror.stop());
    const rejected = (): number => logs.count(`a consumer of ${prefix} rejected an update`, 'error');

    await waitFor(() => mirror.current.has(`${prefix}a`), 10_000, { what: 'the first list' });
    const offeredKey = (key: string) => (): boolean => offered.some((keys) => keys.includes(`${prefix}${key}`));
    await fx.outsider.put(`${prefix}boom-1`).value('1');
    await waitFor(offeredKey('boom-1'), 5_000, { what: 'the first rejected offer' });
    await fx.outsider.put(`${prefix}boom-2`).value('2');
    await waitFor(offeredKey('boom-2'), 5_000, { what: 'the second rejected offer' });
    await sleep(300); // etcd3 rethrows listener errors on a later tick: give it that tick
    expect(uncaught).toEqual([]);
    // Each offer is the whole state, the change the consumer refused before included.
    expect(offered.at(-1)?.sort()).toEqual(['a', 'boom-1', 'boom-2'].map((key) => `${prefix}${key}`));
    expect(rejected()).toBe(1);
    const line = logs.matching(`a consumer of ${prefix} rejected an update`)[0].message;
    expect(line).toContain('consumer exploded');
    expect(line).not.toMatch(/[\n\r]/);
    expect(uncaught).toEqual([]);

    // Once the consumer accepts again, it gets etcd's whole state, the rejected changes included.
    rejecting = false;
    await fx.outsider.put(`${prefix}after`).value('3');
    await waitFor(() => mirror.current.has(`${prefix}after`), 5_000, { what: 'an accepted update' });
    expect([...mirror.current.keys()].sort()).toEqual(['a', 'after', 'boom-1', 'boom-2'].map((key) => `${prefix}${key}`));
    expect(logs.count(`the consumer of ${prefix} accepts updates again`, 'log')).toBe(1);
    expect(uncaught).toEqual([]);
  });

  it('a key whose decode throws is left out and logged once, listed or watched', async () => {
    const prefix = `${uniqueNamespace('undecodable')}/svc/`;
    await fx.outsider.put(`${prefix}good-1`).value('ok');
    await fx.outsider.put(`${prefix}bad-1`).value('nope');
    const followed = follow(libraryClient(), prefix, {
      decode: (key, kv) => {
        if (kv.value.toString() === 'nope') throw new Error(`cannot decode ${key}`);
        return describeValue(key, kv);
      },
    });
    await waitFor(() => followed.changes.length > 0, 10_000, { what: 'the first list' });
    expect(followed.keys()).toEqual([`${prefix}good-1`]);
    await fx.outsider.put(`${prefix}bad-2`).value('nope');
    await fx.outsider.put(`${prefix}bad-1`).value('nope'); // rewritten garbage: still one line for it
    await fx.outsider.put(`${prefix}good-2`).value('ok');
    await waitFor(() => followed.mirror.current.has(`${prefix}good-2`), 5_000, { what: 'good-2' });
    expect(followed.keys()).toEqual([`${prefix}good-1`, `${prefix}good-2`]);
    expect(logs.count(`skipping ${prefix}bad-1`, 'warn')).toBe(1);
    expect(logs.count(`skipping ${prefix}bad-2`, 'warn')).toBe(1);
  });
});

describe('prefix mirror: many watches over a slow link', () => {
  it('100 prefixes behind a 60 ms link each get their first list and a confirmed watch', { timeout: 120_000 }, async () => {
    const ns = uniqueNamespace('slow');
    const prefixes = Array.from({ length: 100 }, (_, n) => `${ns}/s${String(n).padStart(3, '0')}/`);
    await putMany(prefixes.map((prefix) => [`${prefix}seed`, record('127.0.0.1:7300')] as const));
    const proxy = await startFaultProxy(fx.etcd.endpoint, { mode: { delayMs: 60 } });
    fx.cleanup.add(() => proxy.close());
    const client = libraryClient(proxy.endpoint);

    const startedAt = performance.now();
    const mirrors = prefixes.map((prefix) => follow(client, prefix));
    await waitFor(() => mirrors.every((followed) => followed.changes.length > 0), 60_000, { what: 'every first list', intervalMs: 100 });
    const listedMs = performance.now() - startedAt;
    // Put after every list: only a watch (created after the list, from its revision) can bring this.
    await putMany(prefixes.map((prefix) => [`${prefix}late`, record('127.0.0.1:7301')] as const));
    await waitFor(() => mirrors.every((followed, n) => followed.mirror.current.has(`${prefixes[n]}late`)), 60_000, {
      what: 'the late key on every mirror',
      intervalMs: 100,
    });
    const settledMs = performance.now() - startedAt;
    console.info(`[measure] 100 prefixes over 60 ms each way: all listed in ${listedMs.toFixed(0)} ms, all watching (event seen) in ${settledMs.toFixed(0)} ms`);
    expect(settledMs).toBeLessThan(60_000);
    // Not one watch given up and re-created: each event came through the first watch of its mirror.
    expect(logs.count(new RegExp(`${ns}/s\\d+/ ended`))).toBe(0);
    expect(mirrors.every((followed) => followed.changes.length === 2)).toBe(true);
  });
});

describe('prefix mirror: why a list failed', () => {
  it('nothing listening: unreachableReason and onListFailed say "etcd unreachable"', async () => {
    const port = await freePort();
    const followed = follow(libraryClient(`http://127.0.0.1:${port}`), '/nowhere/svc/');
    await waitFor(() => followed.mirror.unreachableReason, 10_000, { what: 'a failed list' });
    expect(followed.mirror.unreachableReason).toMatch(/^etcd unreachable: /);
    expect(followed.listFailures[0]).toBe(followed.mirror.unreachableReason);
    expect(followed.changes).toEqual([]);
  });

  it('RBAC refusal and a wrong password both say "permission denied"', { timeout: 60_000 }, async () => {
    const secured = await startEtcd();
    fx.cleanup.add(() => secured.destroy());
    const admin = new Etcd3({ hosts: [secured.endpoint] });
    fx.cleanup.add(() => admin.close());
    await admin.role('root').create();
    await admin.user('root').create('root-pw');
    await admin.user('root').addRole('root');
    await admin.role('reader').create();
    await admin.role('reader').grant({ permission: 'Read', range: Range.prefix('/mine/') });
    await admin.user('bob').create('bob-pw');
    await admin.user('bob').addRole('reader');
    await admin.auth.authEnable();

    const asBob = (password: string): Etcd3 =>
      libraryClientWith(createEtcdClient(discoveryOptions(secured.endpoint, '/unused', { etcd: { hosts: [secured.endpoint], auth: { username: 'bob', password } } }).etcd));
    const denied = follow(asBob('bob-pw'), '/theirs/svc/');
    const wrongPassword = follow(asBob('wrong'), '/mine/svc/');
    const allowed = follow(asBob('bob-pw'), '/mine/svc/');
    await waitFor(() => denied.mirror.unreachableReason && wrongPassword.mirror.unreachableReason && allowed.changes.length > 0, 15_000, {
      what: 'both failures and the allowed list',
    });
    expect(denied.mirror.unreachableReason).toMatch(/^permission denied: .*permission denied/);
    expect(wrongPassword.mirror.unreachableReason).toMatch(/^permission denied: .*authentication failed/);
    expect(allowed.mirror.unreachableReason).toBeUndefined();
  });
});

function libraryClientWith(client: Etcd3): Etcd3 {
  fx.cleanup.add(() => client.close());
  return client;
}

describe('prefix mirror: hostile keys and revisions', () => {
  it('never reads a key longer than 512 bytes after the prefix: logged once each, not counted, the rest listed', async () => {
    const prefix = `${uniqueNamespace('longkeys')}/svc/`;
    const long = Array.from({ length: 50 }, (_, n) => [`${prefix}${String(n).padStart(2, '0')}${'k'.repeat(20_000)}`, 'v'] as const);
    await putMany([...long, [`${prefix}short`, 'ok']]);
    const startedAt = performance.now();
    const followed = follow(libraryClient(), prefix);
    await waitFor(() => followed.changes.length > 0, 10_000, { what: 'the first list' });
    expect(performance.now() - startedAt).toBeLessThan(5_000);
    expect(followed.keys()).toEqual([`${prefix}short`]);
    const skipLines = () => logs.lines.filter((line) => line.message.includes(`${prefix}: skipping a key of`));
    // One line per key, at most 20 in 10 s (the rest are counted in one line when the window ends).
    expect(skipLines()).toHaveLength(20);
    for (const line of skipLines()) expect(line.message.length).toBeLessThan(400);

    // Rewriting them (and deleting them) logs nothing new; a normal key written afterwards arrives.
    await putMany(long.map(([key]) => [key, 'again'] as const));
    await fx.outsider.delete().key(long[0][0]);
    await fx.outsider.put(`${prefix}after`).value('ok');
    await waitFor(() => followed.keys().includes(`${prefix}after`), 5_000, { what: 'the key after the long ones' });
    expect(skipLines()).toHaveLength(20);
  });

  it('survives one revision larger than the receive limit (a range delete of 20 keys of 1 MB): watched in fragments, no resync', async () => {
    const ns = uniqueNamespace('fragment');
    const victim = `${ns}/victim/`;
    const evil = `${ns}/evil/`;
    const client = libraryClient();
    const followed = follow(client, victim);
    const evilFollowed = follow(client, evil);
    await waitFor(() => followed.changes.length > 0 && evilFollowed.changes.length > 0, 10_000, { what: 'the first lists' });
    // Delete events carry their keys: one delete of these 20 is a 20 MB revision, over the client's 16 MiB limit.
    for (let n = 0; n < 20; n += 1) await fx.outsider.put(`${evil}${'K'.repeat(1_000_000)}${pad(n)}`).value('x');
    await fx.outsider.put(`${evil}marker`).value('x');
    await waitFor(() => evilFollowed.keys().includes(`${evil}marker`), 20_000, { what: 'the marker after the big keys' });
    const mark = logs.lines.length;
    await fx.outsider.delete().prefix(evil);
    await waitFor(() => evilFollowed.keys().length === 0, 20_000, { what: 'the delete applied' });
    await fx.outsider.put(`${victim}after`).value('ok');
    await waitFor(() => followed.keys().includes(`${victim}after`), 5_000, { what: 'the victim service still followed' });
    const troubles = logs.lines.slice(mark).filter((line) => /ended|listing again|resynced|cannot list/.test(line.message));
    expect(troubles.map((line) => line.message.slice(0, 200))).toEqual([]);
  });
});

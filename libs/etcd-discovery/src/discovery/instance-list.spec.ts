import { describe, expect, it } from 'vitest';
import type { MirrorEntry, MirrorSnapshot } from '../registry/prefix-mirror.js';
import type { ServiceInstance } from './service-instance.js';
import { AddressPolicy } from '../registry/address-policy.js';
import type { IKeyValue } from 'etcd3';
import { formatHostPort } from '../common/host-port.js';
import { buildInstanceList, decodeEntry, decodeStoredEntry, diffInstances, flatHostPort, isEmptyDiff, type DecodedEntry } from './instance-list.js';

const PREFIX = '/services/greeter/';

function ok(id: string | undefined, host: string, port: number, metadata: Record<string, unknown> = {}): DecodedEntry {
  return { ok: true, id, address: { host, port }, metadata };
}

function bad(reason: string): DecodedEntry {
  return { ok: false, reason };
}

/** Entries are created in the order given: the first is the oldest record. */
function snapshot(entries: Record<string, DecodedEntry>): MirrorSnapshot<DecodedEntry> {
  return new Map(
    Object.entries(entries).map(([key, value], index): [string, MirrorEntry<DecodedEntry>] => [
      key,
      { createRevision: String(index + 1), modRevision: String(index + 1), value },
    ]),
  );
}

function instance(id: string, address: string, metadata: Record<string, unknown> = {}): ServiceInstance {
  const [, host, port] = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return { id, key: `${PREFIX}${id}`, address, host, port: Number(port), metadata };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

describe('buildInstanceList', () => {
  it('lists valid records ordered by key, whatever the snapshot order', () => {
    const { instances, skipped } = buildInstanceList(
      snapshot({
        [`${PREFIX}c`]: ok('c', '10.0.0.3', 3),
        [`${PREFIX}a`]: ok('a', '::1', 1, { zone: 'eu-1' }),
        [`${PREFIX}b`]: ok('b', 'b.local', 2),
      }),
    );
    expect(instances).toEqual([
      { id: 'a', key: `${PREFIX}a`, address: '[::1]:1', host: '::1', port: 1, metadata: { zone: 'eu-1' } },
      { id: 'b', key: `${PREFIX}b`, address: 'b.local:2', host: 'b.local', port: 2, metadata: {} },
      { id: 'c', key: `${PREFIX}c`, address: '10.0.0.3:3', host: '10.0.0.3', port: 3, metadata: {} },
    ]);
    expect(skipped.size).toBe(0);
  });

  it('returns nothing for an empty snapshot', () => {
    expect(buildInstanceList(new Map())).toEqual({ instances: [], skipped: new Map() });
  });

  it('skips invalid records with their reason and entries without an id', () => {
    const { instances, skipped } = buildInstanceList(
      snapshot({
        [`${PREFIX}good`]: ok('good', '10.0.0.1', 1),
        [`${PREFIX}broken`]: bad('invalid JSON: "{"'),
        [`${PREFIX}nested/x`]: ok(undefined, '10.0.0.2', 2),
      }),
    );
    expect(instances.map((i) => i.key)).toEqual([`${PREFIX}good`]);
    expect([...skipped]).toEqual([
      [`${PREFIX}broken`, 'invalid JSON: "{"'],
      [`${PREFIX}nested/x`, 'key is not <namespace>/<service>/<instanceId>'],
    ]);
  });

  it('gives an address to its oldest record, whatever the keys, and names it when skipping the others', () => {
    const { instances, skipped } = buildInstanceList(
      snapshot({
        [`${PREFIX}z-live`]: ok('z-live', '10.0.0.1', 50051, { v: 1 }),
        [`${PREFIX}0-copy-of-z`]: ok('0-copy-of-z', '10.0.0.1', 50051, { v: 2 }),
        [`${PREFIX}m-other`]: ok('m-other', '10.0.0.1', 50052),
        [`${PREFIX}v6-a`]: ok('v6-a', '::1', 1),
        [`${PREFIX}v6-b`]: ok('v6-b', '::1', 1),
      }),
    );
    // Listed in key order; the later copy can neither take the address nor its metadata.
    expect(instances.map((i) => i.id)).toEqual(['m-other', 'v6-a', 'z-live']);
    expect(instances.find((i) => i.id === 'z-live')?.metadata).toEqual({ v: 1 });
    expect(skipped.get(`${PREFIX}0-copy-of-z`)).toBe(`duplicate of ${PREFIX}z-live (same address 10.0.0.1:50051)`);
    expect(skipped.get(`${PREFIX}v6-b`)).toBe(`duplicate of ${PREFIX}v6-a (same address [::1]:1)`);
    expect(skipped.size).toBe(2);
  });

  it('orders records of equal age by key when choosing the holder', () => {
    const same = (value: DecodedEntry): MirrorEntry<DecodedEntry> => ({ createRevision: '7', modRevision: '7', value });
    const { instances } = buildInstanceList(
      new Map([
        [`${PREFIX}b`, same(ok('b', '10.0.0.1', 1))],
        [`${PREFIX}a`, same(ok('a', '10.0.0.1', 1))],
      ]),
    );
    expect(instances.map((i) => i.id)).toEqual(['a']);
  });

  it('does not count a skipped invalid record as the holder of an address', () => {
    const { instances } = buildInstanceList(
      snapshot({ [`${PREFIX}a`]: ok(undefined, '10.0.0.1', 1), [`${PREFIX}b`]: ok('b', '10.0.0.1', 1) }),
    );
    expect(instances.map((i) => i.id)).toEqual(['b']);
  });

  it('does not mutate the snapshot', () => {
    const input = snapshot({ [`${PREFIX}b`]: ok('b', '10.0.0.2', 2), [`${PREFIX}a`]: ok('a', '10.0.0.1', 1) });
    for (const entry of input.values()) deepFreeze(entry);
    const keysBefore = [...input.keys()];
    buildInstanceList(input);
    expect([...input.keys()]).toEqual(keysBefore);
  });
});

describe('diffInstances', () => {
  const a = instance('a', '10.0.0.1:1');
  const b = instance('b', '10.0.0.2:2', { zone: 'eu-1' });
  const c = instance('c', '10.0.0.3:3');

  it.each([
    ['no change', [a, b], [a, b], { added: [], removed: [], changed: [] }],
    ['an equal copy is not a change', [a, b], [{ ...a }, { ...b, metadata: { zone: 'eu-1' } }], { added: [], removed: [], changed: [] }],
    ['from nothing', [], [a, b], { added: [a, b], removed: [], changed: [] }],
    ['to nothing', [a, b], [], { added: [], removed: [a, b], changed: [] }],
    ['one added, one removed', [a, b], [b, c], { added: [c], removed: [a], changed: [] }],
    ['a new address', [a, b], [a, { ...b, address: '10.0.0.9:2', host: '10.0.0.9' }], { added: [], removed: [], changed: [{ ...b, address: '10.0.0.9:2', host: '10.0.0.9' }] }],
    ['new metadata', [a, b], [a, { ...b, metadata: { zone: 'us-1' } }], { added: [], removed: [], changed: [{ ...b, metadata: { zone: 'us-1' } }] }],
    ['metadata gained a field', [a], [{ ...a, metadata: { weight: 0 } }], { added: [], removed: [], changed: [{ ...a, metadata: { weight: 0 } }] }],
    ['all three at once', [a, b], [{ ...b, metadata: {} }, c], { added: [c], removed: [a], changed: [{ ...b, metadata: {} }] }],
  ])('%s', (_label, before, after, expected) => {
    const frozenBefore = deepFreeze(structuredClone(before));
    const frozenAfter = deepFreeze(structuredClone(after));
    expect(diffInstances(frozenBefore, frozenAfter)).toEqual(expected);
    expect(frozenBefore).toEqual(before);
    expect(frozenAfter).toEqual(after);
  });

  it('reports the new version of a changed instance, not the old one', () => {
    const moved = { ...a, address: '10.0.0.8:1', host: '10.0.0.8' };
    expect(diffInstances([a], [moved]).changed[0]).toBe(moved);
  });

  it('isEmptyDiff is true only when nothing changed', () => {
    expect(isEmptyDiff(diffInstances([a, b], [a, b]))).toBe(true);
    expect(isEmptyDiff(diffInstances([a], [a, b]))).toBe(false);
    expect(isEmptyDiff(diffInstances([a, b], [a]))).toBe(false);
    expect(isEmptyDiff(diffInstances([a], [{ ...a, metadata: { v: 1 } }]))).toBe(false);
  });
});

describe('diffInstances on lists not sorted by key', () => {
  it('gives the same differences as on sorted lists', () => {
    const a = instance('a', '10.0.0.1:1');
    const b = instance('b', '10.0.0.2:2');
    const c = instance('c', '10.0.0.3:3');
    const b2 = { ...b, metadata: { zone: 'x' } };
    expect(diffInstances([c, a, b], [b2, c])).toEqual({ added: [], removed: [a], changed: [b2] });
    expect(diffInstances([a, b], [c, b2, a])).toEqual({ added: [c], removed: [], changed: [b2] });
  });
});

describe('decodeEntry', () => {
  it('prepares a valid record once: the same instance object for every rebuild', () => {
    const entry = decodeEntry(PREFIX, `${PREFIX}x`, '{"Addr":"10.0.0.1:1","Metadata":{"zone":"a"}}');
    const snap = new Map([[`${PREFIX}x`, { createRevision: '1', modRevision: '1', value: entry }]]);
    const first = buildInstanceList(snap).instances[0];
    expect(first).toEqual({ id: 'x', key: `${PREFIX}x`, address: '10.0.0.1:1', host: '10.0.0.1', port: 1, metadata: { zone: 'a' } });
    expect(buildInstanceList(snap).instances[0]).toBe(first);
  });

  it('applies the address policy at decode time', () => {
    const entry = decodeEntry(PREFIX, `${PREFIX}x`, '{"Addr":"169.254.169.254:80"}', new AddressPolicy());
    const { instances, skipped } = buildInstanceList(new Map([[`${PREFIX}x`, { createRevision: '1', modRevision: '1', value: entry }]]));
    expect(instances).toEqual([]);
    expect(skipped.get(`${PREFIX}x`)).toMatch(/^address policy: 169\.254\.169\.254 is link-local/);
  });
});

describe('decodeStoredEntry', () => {
  const kv = (value: string, create = '5', mod = '5'): IKeyValue =>
    ({ key: Buffer.from(`${PREFIX}x`), value: Buffer.from(value), create_revision: create, mod_revision: mod, version: '1', lease: '0' }) as IKeyValue;

  it('is its own mirror entry: one object per record, listed as decodeEntry lists it', () => {
    const value = '{"Addr":"10.0.0.1:1","Metadata":{"zone":"a"}}';
    const stored = decodeStoredEntry(PREFIX, `${PREFIX}x`, kv(value), 42);
    expect(stored.value).toBe(stored);
    expect(stored).toMatchObject({ createRevision: '5', modRevision: '5', bytes: 42 });
    // One string for both revisions of a record written once.
    expect(Object.is(stored.createRevision, stored.modRevision)).toBe(true);
    const viaDecode = buildInstanceList(new Map([[`${PREFIX}x`, { createRevision: '5', modRevision: '5', value: decodeEntry(PREFIX, `${PREFIX}x`, value) }]]));
    expect(buildInstanceList(new Map([[`${PREFIX}x`, stored]]))).toEqual(viaDecode);
    expect(stored.value).toMatchObject({ ok: true, id: 'x', address: { host: '10.0.0.1', port: 1 }, metadata: { zone: 'a' } });
  });

  it('keeps bad records and nested keys as decodeEntry does, skipped with their reason', () => {
    const bad = decodeStoredEntry(PREFIX, `${PREFIX}x`, kv('{"Addr":'), 9);
    expect(bad.value).toMatchObject({ ok: false });
    const nested = decodeStoredEntry(PREFIX, `${PREFIX}a/b`, kv('{"Addr":"10.0.0.1:1"}'), 9);
    const { skipped } = buildInstanceList(new Map([[`${PREFIX}x`, bad], [`${PREFIX}a/b`, nested]]));
    expect(skipped.get(`${PREFIX}x`)).toMatch(/^invalid JSON/);
    expect(skipped.get(`${PREFIX}a/b`)).toBe('key is not <namespace>/<service>/<instanceId>');
  });
});

describe('flatHostPort', () => {
  it('writes what formatHostPort writes', () => {
    for (const address of [{ host: '10.0.0.1', port: 50051 }, { host: '::1', port: 1 }, { host: 'fe80::1', port: 65535 }, { host: 'greeter.default.svc', port: 80 }]) {
      expect(flatHostPort(address)).toBe(formatHostPort(address));
    }
  });
});

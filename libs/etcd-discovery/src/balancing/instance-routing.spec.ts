import { describe, expect, it } from 'vitest';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { isValidVersionRange, matchesSelector, routeInstances, type InstanceSelector } from './instance-routing.js';

function instance(id: string, metadata: Record<string, unknown>): ServiceInstance {
  const port = 50_000 + Number(id.replace(/\D/g, '') || 0);
  return Object.freeze({ id, key: `/services/greeter/${id}`, address: `10.0.0.1:${port}`, host: '10.0.0.1', port, metadata: Object.freeze({ ...metadata }) });
}

const ids = (list: readonly ServiceInstance[]): string[] => list.map((item) => item.id);

describe('matchesSelector', () => {
  describe('metadata: exact match on every listed key', () => {
    const record = instance('i1', { zone: 'eu-1', canary: false, shard: 3, version: '1.4.0' });
    it.each<[string, InstanceSelector, boolean]>([
      ['empty selector', {}, true],
      ['empty metadata', { metadata: {} }, true],
      ['one string key', { metadata: { zone: 'eu-1' } }, true],
      ['another value', { metadata: { zone: 'eu-2' } }, false],
      ['a different case', { metadata: { zone: 'EU-1' } }, false],
      ['boolean false', { metadata: { canary: false } }, true],
      ['boolean true', { metadata: { canary: true } }, false],
      ['"false" as a string', { metadata: { canary: 'false' } }, false],
      ['a number', { metadata: { shard: 3 } }, true],
      ['the number as a string', { metadata: { shard: '3' } }, false],
      ['every key matching', { metadata: { zone: 'eu-1', shard: 3 } }, true],
      ['one of two keys not matching', { metadata: { zone: 'eu-1', shard: 4 } }, false],
      ['a key the record lacks', { metadata: { tier: 'gold' } }, false],
    ])('%s', (_label, selector, expected) => {
      expect(matchesSelector(record, selector)).toBe(expected);
    });
  });

  describe('version: a semver range on Metadata.version', () => {
    it.each<[string, unknown, string, boolean]>([
      ['caret inside', '2.1.0', '^2.0.0', true],
      ['caret lower bound', '2.0.0', '^2.0.0', true],
      ['caret below', '1.9.9', '^2.0.0', false],
      ['caret next major', '3.0.0', '^2.0.0', false],
      ['tilde', '1.4.7', '~1.4.0', true],
      ['tilde next minor', '1.5.0', '~1.4.0', false],
      ['range', '2.5.0', '>=2 <3', true],
      ['x-range', '1.2.3', '1.x', true],
      ['exact', '1.4.0', '1.4.0', true],
      ['exact other', '1.4.1', '1.4.0', false],
      ['a v prefix is a valid version', 'v2.1.0', '^2.0.0', true],
      ['invalid version text', 'latest', '*', false],
      ['two-part version', '2.1', '^2.0.0', false],
      ['empty version', '', '*', false],
      ['numeric version', 2, '*', false],
      ['no version at all', undefined, '*', false],
    ])('%s: %j in %s -> %s', (_label, version, range, expected) => {
      const record = instance('i1', version === undefined ? {} : { version });
      expect(matchesSelector(record, { version: range })).toBe(expected);
    });

    it('needs both the metadata and the version to match', () => {
      const record = instance('i1', { version: '2.1.0', zone: 'a' });
      expect(matchesSelector(record, { version: '^2.0.0', metadata: { zone: 'a' } })).toBe(true);
      expect(matchesSelector(record, { version: '^2.0.0', metadata: { zone: 'b' } })).toBe(false);
      expect(matchesSelector(record, { version: '^3.0.0', metadata: { zone: 'a' } })).toBe(false);
    });
  });

  it('ignores preferredZone (a preference, not a filter)', () => {
    expect(matchesSelector(instance('i1', { zone: 'b' }), { preferredZone: 'a' })).toBe(true);
  });
});

describe('isValidVersionRange', () => {
  it.each([
    ['^1.4.0', true],
    ['>=2 <3', true],
    ['1.x', true],
    ['*', true],
    ['not a range', false],
    ['^^1', false],
    ['>=abc', false],
  ])('%j -> %s', (range, expected) => {
    expect(isValidVersionRange(range)).toBe(expected);
  });
});

describe('routeInstances', () => {
  const a1 = instance('a1', { zone: 'a', version: '2.0.0' });
  const a2 = instance('a2', { zone: 'a', version: '1.0.0' });
  const b1 = instance('b1', { zone: 'b', version: '2.3.0' });
  const c1 = instance('c1', { zone: 'c', version: '2.1.0', canary: true });
  const all = Object.freeze([a1, a2, b1, c1]);

  it.each<[string, readonly ServiceInstance[], InstanceSelector, string[], boolean]>([
    ['no selector', all, {}, ['a1', 'a2', 'b1', 'c1'], false],
    ['metadata filter', all, { metadata: { canary: true } }, ['c1'], false],
    ['version filter', all, { version: '^2.0.0' }, ['a1', 'b1', 'c1'], false],
    ['preferred zone only', all, { preferredZone: 'a' }, ['a1', 'a2'], false],
    ['preferred zone with a single instance', all, { preferredZone: 'b' }, ['b1'], false],
    ['preferred zone without instances: every zone, flagged', all, { preferredZone: 'z' }, ['a1', 'a2', 'b1', 'c1'], true],
    ['preferred zone among filtered instances', all, { preferredZone: 'a', version: '^2.0.0' }, ['a1'], false],
    ['zone instances filtered out: fallback to other zones that match', all, { preferredZone: 'a', metadata: { canary: true } }, ['c1'], true],
    ['zone instances gone from the list: fallback', [b1, c1], { preferredZone: 'a' }, ['b1', 'c1'], true],
    ['zone instance back in the list: zone only again', [b1, c1, a1], { preferredZone: 'a' }, ['a1'], false],
  ])('%s', (_label, list, selector, expected, fallback) => {
    const routed = routeInstances('greeter', list, selector);
    expect(ids(routed.instances)).toEqual(expected);
    expect(routed.zoneFallback).toBe(fallback);
    expect(routed.note).toBe('');
  });

  it('keeps the list order', () => {
    expect(ids(routeInstances('greeter', [c1, b1, a1], { version: '^2.0.0' }).instances)).toEqual(['c1', 'b1', 'a1']);
  });

  it.each<[string, InstanceSelector, string]>([
    ['version', { version: '^3.0.0' }, '"version":"^3.0.0"'],
    ['metadata', { metadata: { zone: 'moon' } }, '"metadata":{"zone":"moon"}'],
    ['version and zone', { version: '^9.0.0', preferredZone: 'a' }, '"version":"^9.0.0"'],
  ])('explains an empty result naming the service and the %s selector', (_label, selector, shown) => {
    const routed = routeInstances('greeter', all, selector);
    expect(routed.instances).toEqual([]);
    expect(routed.zoneFallback).toBe(false);
    expect(routed.note).toContain('"greeter"');
    expect(routed.note).toContain(shown);
    expect(routed.note).toContain('4 live instance(s)');
  });

  it('leaves the note empty when there is no instance at all (the resolver explains that)', () => {
    const routed = routeInstances('greeter', [], { version: '^2.0.0', preferredZone: 'a' });
    expect(routed).toEqual({ instances: [], note: '', zoneFallback: false });
  });

  it('does not mutate the input list or its records', () => {
    const list = Object.freeze([a1, a2, b1, c1]);
    expect(() => routeInstances('greeter', list, { preferredZone: 'a', version: '^2.0.0' })).not.toThrow();
    expect(ids(list)).toEqual(['a1', 'a2', 'b1', 'c1']);
  });
});

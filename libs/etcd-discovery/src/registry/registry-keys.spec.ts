import { describe, expect, it } from 'vitest';
import { instanceIdOf, instanceKey, newInstanceId, servicePrefix } from './registry-keys.js';

describe('servicePrefix and instanceKey', () => {
  it.each([
    ['/services', 'greeter', 'id-1', '/services/greeter/', '/services/greeter/id-1'],
    ['/prod/services', 'billing.v2', 'host-42-0a1b2c3d', '/prod/services/billing.v2/', '/prod/services/billing.v2/host-42-0a1b2c3d'],
  ])('%s + %s + %s', (namespace, service, id, prefix, key) => {
    expect(servicePrefix(namespace, service)).toBe(prefix);
    expect(instanceKey(namespace, service, id)).toBe(key);
  });
});

describe('instanceIdOf', () => {
  const prefix = servicePrefix('/services', 'greeter');

  it.each([
    ['a key inside the prefix', '/services/greeter/abc-1', 'abc-1'],
    ['the key instanceKey builds', instanceKey('/services', 'greeter', 'h-7-deadbeef'), 'h-7-deadbeef'],
    ['a key of another service', '/services/billing/abc', undefined],
    ['a service whose name extends ours', '/services/greeter2/abc', undefined],
    ['a key outside the namespace', '/other/greeter/abc', undefined],
    ['a nested key', '/services/greeter/a/b', undefined],
    ['a trailing slash', '/services/greeter/a/', undefined],
    ['the prefix itself (empty id)', '/services/greeter/', undefined],
    ['the prefix without its slash', '/services/greeter', undefined],
  ])('%s', (_label, key, expected) => {
    expect(instanceIdOf(prefix, key)).toBe(expected);
  });
});

describe('newInstanceId', () => {
  it('has the form <host>-<pid>-<8 hex> with the current pid', () => {
    const id = newInstanceId();
    expect(id).toMatch(/^[A-Za-z0-9.-]+-\d+-[0-9a-f]{8}$/);
    expect(id).toContain(`-${process.pid}-`);
  });

  it('is unique across 1000 calls, each a valid key segment', () => {
    const ids = Array.from({ length: 1000 }, () => newInstanceId());
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9.-]+-\d+-[0-9a-f]{8}$/);
      expect(instanceIdOf('/services/greeter/', `/services/greeter/${id}`)).toBe(id);
    }
  });
});

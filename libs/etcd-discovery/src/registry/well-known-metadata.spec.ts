import { describe, expect, it } from 'vitest';
import { decodeRecord } from './registry-record.codec.js';
import { wellKnownMetadata } from './well-known-metadata.js';

describe('wellKnownMetadata', () => {
  it.each<[string, Record<string, unknown>, number]>([
    ['no weight key', { zone: 'a' }, 1],
    ['weight 1', { weight: 1 }, 1],
    ['weight 3', { weight: 3 }, 3],
    ['weight 0 (standby)', { weight: 0 }, 0],
    ['the largest weight', { weight: 1_000_000 }, 1_000_000],
  ])('%s -> weight %s, no problem', (_label, metadata, weight) => {
    expect(wellKnownMetadata(metadata)).toMatchObject({ weight, problems: [] });
  });

  it.each<[string, unknown, string]>([
    ['negative', -1, '-1'],
    ['fractional', 1.5, '1.5'],
    ['too large', 1_000_001, '1000001'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['a numeric string', '3', '"3"'],
    ['a word', 'heavy', '"heavy"'],
    ['a boolean', true, 'true'],
    ['null', null, 'null'],
    ['an object', { value: 2 }, '(an object)'],
    ['an array', [2], '(an array of 1)'],
  ])('%s weight -> 1 with a problem naming the value', (_label, raw, shown) => {
    const result = wellKnownMetadata({ weight: raw });
    expect(result.weight).toBe(1);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toContain(`weight ${shown} is not`);
    expect(result.problems[0]).toMatch(/counting it as 1/);
  });

  it('reads zone and version only when they are short strings', () => {
    expect(wellKnownMetadata({ zone: 'eu-1', version: '1.2.3' })).toMatchObject({ zone: 'eu-1', version: '1.2.3', problems: [] });
    const bad = wellKnownMetadata({ zone: 7, version: 'x'.repeat(129) });
    expect(bad.zone).toBeUndefined();
    expect(bad.version).toBeUndefined();
    expect(bad.problems.map((problem) => problem.split(' ')[0])).toEqual(['zone', 'version']);
  });

  it('never walks a nested value: a weight array 5,000 levels deep is described, not stringified', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 5_000; i++) deep = [deep];
    const result = wellKnownMetadata({ weight: deep });
    expect(result.weight).toBe(1);
    expect(result.problems[0]).toContain('(an array of 1)');
  });

  it('is computed once per metadata object (decoded records are frozen)', () => {
    const decoded = decodeRecord('{"Addr":"10.0.0.1:1","Metadata":{"weight":4}}');
    if (!decoded.ok) throw new Error(decoded.reason);
    expect(wellKnownMetadata(decoded.metadata)).toBe(wellKnownMetadata(decoded.metadata));
    expect(wellKnownMetadata(decoded.metadata).weight).toBe(4);
  });
});

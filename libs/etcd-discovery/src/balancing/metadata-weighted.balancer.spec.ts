import { describe, expect, it } from 'vitest';
import { METADATA_WEIGHTED_POLICY, MetadataWeightedConfig, weightOf } from './metadata-weighted.balancer.js';

describe('weightOf', () => {
  it.each<[string, Record<string, unknown> | undefined, number]>([
    ['no metadata', undefined, 1],
    ['no weight key', { zone: 'a' }, 1],
    ['weight 1', { weight: 1 }, 1],
    ['weight 3', { weight: 3 }, 3],
    ['weight 0 (standby)', { weight: 0 }, 0],
    ['the largest weight', { weight: 1_000_000 }, 1_000_000],
  ])('%s -> %s, no problem', (_label, metadata, weight) => {
    expect(weightOf(metadata)).toEqual({ weight });
  });

  it.each<[string, unknown]>([
    ['negative', -1],
    ['fractional', 1.5],
    ['too large', 1_000_001],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a numeric string', '3'],
    ['a word', 'heavy'],
    ['a boolean', true],
    ['null', null],
    ['an object', { value: 2 }],
    ['an array', [2]],
  ])('%s weight -> 1 with a problem naming the value', (_label, raw) => {
    const result = weightOf({ weight: raw });
    expect(result.weight).toBe(1);
    expect(result.problem).toContain(String(JSON.stringify(raw)));
    expect(result.problem).toMatch(/using 1/);
  });

  it('does not mutate the metadata', () => {
    const metadata = Object.freeze({ weight: 'x' });
    expect(() => weightOf(metadata)).not.toThrow();
  });
});

describe('MetadataWeightedConfig', () => {
  it('accepts an empty config and serializes under the registered name', () => {
    expect(MetadataWeightedConfig.createFromJson({}).toJsonObject()).toEqual({ [METADATA_WEIGHTED_POLICY]: {} });
    expect(MetadataWeightedConfig.createFromJson(undefined).getLoadBalancerName()).toBe(METADATA_WEIGHTED_POLICY);
  });

  it.each([[{ weights: {} }], [null], [3]])('rejects %j with an error naming the policy', (json) => {
    expect(() => MetadataWeightedConfig.createFromJson(json)).toThrow(METADATA_WEIGHTED_POLICY);
  });
});

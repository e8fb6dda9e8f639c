import { describe, expect, it } from 'vitest';
import { METADATA_WEIGHTED_POLICY, MetadataWeightedConfig } from './metadata-weighted.balancer.js';

describe('MetadataWeightedConfig', () => {
  it('accepts an empty config and serializes under the registered name', () => {
    expect(MetadataWeightedConfig.createFromJson({}).toJsonObject()).toEqual({ [METADATA_WEIGHTED_POLICY]: {} });
    expect(MetadataWeightedConfig.createFromJson(undefined).getLoadBalancerName()).toBe(METADATA_WEIGHTED_POLICY);
  });

  it.each([[{ weights: {} }], [null], [3]])('rejects %j with an error naming the policy', (json) => {
    expect(() => MetadataWeightedConfig.createFromJson(json)).toThrow(METADATA_WEIGHTED_POLICY);
  });
});

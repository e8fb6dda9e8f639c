import { experimental } from '@grpc/grpc-js';
import { validateServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBalancing } from '../balancing/index.js';
import { METADATA_WEIGHTED_POLICY } from '../balancing/metadata-weighted.balancer.js';
import { P2C_EWMA_POLICY } from '../balancing/p2c-ewma.balancer.js';
import { buildServiceConfig, durationText, LOAD_BALANCING_POLICIES, type LoadBalancingPolicy, type ServiceConfigInput } from './service-config.js';

type RawLbConfig = Parameters<typeof experimental.parseLoadBalancingConfig>[0];

const DURATION = /^\d+(\.\d{1,9})?s$/;

function build(input: Partial<ServiceConfigInput>): Record<string, unknown> {
  return buildServiceConfig({ loadBalancing: 'round_robin', base: {}, ...input });
}

/** What grpc-js makes of a duration string in a method config's `timeout`. */
function grpcTimeout(text: string): unknown {
  return validateServiceConfig({ methodConfig: [{ name: [{}], timeout: text }] }).methodConfig[0].timeout;
}

describe('durationText', () => {
  it.each([
    [500, '0.500000000s'],
    [100, '0.100000000s'],
    [1, '0.001000000s'],
    [0.5, '0.000500000s'],
    [0, '0.000000000s'],
    [1_000, '1.000000000s'],
    [1_500, '1.500000000s'],
    [30_000, '30.000000000s'],
    [86_400_000, '86400.000000000s'],
    [1_234.567891, '1.234567891s'],
  ])('%s ms -> %s', (ms, text) => {
    expect(durationText(ms)).toBe(text);
    expect(text).toMatch(DURATION);
  });

  it('reads back in grpc-js as the same duration ("0.5s" would be 5 ns)', () => {
    expect(grpcTimeout(durationText(500))).toEqual({ seconds: 0, nanos: 500_000_000 });
    expect(grpcTimeout(durationText(2_250))).toEqual({ seconds: 2, nanos: 250_000_000 });
    expect(grpcTimeout('0.5s')).toEqual({ seconds: 0, nanos: 5 }); // why all nine digits are needed
  });

  it('carries a rounding overflow into the seconds instead of writing ten fraction digits', () => {
    // 999.9999999 ms rounds to 1e9 ns: the text must be 1 s, not "0.1000000000s".
    expect(durationText(999.999_999_9)).toBe('1.000000000s');
    expect(durationText(1_999.999_999_9)).toMatch(DURATION);
  });
});

describe('buildServiceConfig', () => {
  it.each<[LoadBalancingPolicy, string]>([
    ['round_robin', 'round_robin'],
    ['pick_first', 'pick_first'],
    ['p2c_ewma', P2C_EWMA_POLICY],
    ['metadata_weighted', METADATA_WEIGHTED_POLICY],
  ])('selects %s as grpc-js policy %s and nothing else', (policy, registered) => {
    expect(LOAD_BALANCING_POLICIES[policy]).toBe(registered);
    expect(build({ loadBalancing: policy })).toEqual({ loadBalancingConfig: [{ [registered]: {} }] });
  });

  it('wraps the policy in outlier_detection, durations as {seconds, nanos}, snake_case fields', () => {
    const config = build({
      loadBalancing: 'p2c_ewma',
      outlierDetection: {
        intervalMs: 500,
        baseEjectionTimeMs: 5_000,
        maxEjectionTimeMs: 60_000,
        maxEjectionPercent: 50,
        successRateEjection: { stdevFactor: 1900, enforcementPercentage: 100, minimumHosts: 3, requestVolume: 50 },
        failurePercentageEjection: { threshold: 50, requestVolume: 20, minimumHosts: 2 },
      },
    });
    expect(config).toEqual({
      loadBalancingConfig: [
        {
          outlier_detection: {
            interval: { seconds: 0, nanos: 500_000_000 },
            base_ejection_time: { seconds: 5, nanos: 0 },
            max_ejection_time: { seconds: 60, nanos: 0 },
            max_ejection_percent: 50,
            success_rate_ejection: { stdev_factor: 1900, enforcement_percentage: 100, minimum_hosts: 3, request_volume: 50 },
            failure_percentage_ejection: { threshold: 50, request_volume: 20, minimum_hosts: 2 },
            child_policy: [{ [P2C_EWMA_POLICY]: {} }],
          },
        },
      ],
    });
  });

  it('leaves out outlier fields that were not given (grpc-js defaults apply)', () => {
    const config = build({ outlierDetection: { failurePercentageEjection: {} } });
    expect(config.loadBalancingConfig).toEqual([
      { outlier_detection: { failure_percentage_ejection: {}, child_policy: [{ round_robin: {} }] } },
    ]);
  });

  it('builds a retry policy with defaults: 50 ms, 1 s, x2, on UNAVAILABLE and never on business errors', () => {
    const methodConfig = build({ retry: { maxAttempts: 3 } }).methodConfig as { name: unknown; retryPolicy: Record<string, unknown> }[];
    expect(methodConfig).toHaveLength(1);
    expect(methodConfig[0].name).toEqual([{}]);
    const { retryableStatusCodes, ...rest } = methodConfig[0].retryPolicy;
    expect(rest).toEqual({ maxAttempts: 3, initialBackoff: '0.050000000s', maxBackoff: '1.000000000s', backoffMultiplier: 2 });
    expect(retryableStatusCodes).toContain('UNAVAILABLE');
    for (const business of ['NOT_FOUND', 'INVALID_ARGUMENT', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'PERMISSION_DENIED', 'UNAUTHENTICATED']) {
      expect(retryableStatusCodes).not.toContain(business);
    }
  });

  it('takes every retry field given', () => {
    const config = build({
      retry: { maxAttempts: 5, initialBackoffMs: 10, maxBackoffMs: 250, backoffMultiplier: 1.5, retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] },
    });
    expect(config.methodConfig).toEqual([
      {
        name: [{}],
        retryPolicy: {
          maxAttempts: 5,
          initialBackoff: '0.010000000s',
          maxBackoff: '0.250000000s',
          backoffMultiplier: 1.5,
          retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'],
        },
      },
    ]);
  });

  it('puts the timeout on every method, with or without retry', () => {
    expect(build({ timeoutMs: 100 }).methodConfig).toEqual([{ name: [{}], timeout: '0.100000000s' }]);
    const both = build({ timeoutMs: 2_500, retry: { maxAttempts: 2 } }).methodConfig as Record<string, unknown>[];
    expect(both[0].timeout).toBe('2.500000000s');
    expect(both[0].retryPolicy).toMatchObject({ maxAttempts: 2 });
  });

  it('has no methodConfig when neither retry nor timeout is asked', () => {
    expect(build({ loadBalancing: 'p2c_ewma' })).not.toHaveProperty('methodConfig');
  });

  it("lets the user's own service config win field by field", () => {
    const own = { methodConfig: [{ name: [{ service: 'greeter.Greeter' }], timeout: '9.000000000s' }], loadBalancingConfig: [{ pick_first: {} }] };
    const config = build({ loadBalancing: 'p2c_ewma', retry: { maxAttempts: 3 }, base: own });
    expect(config.methodConfig).toBe(own.methodConfig);
    expect(config.loadBalancingConfig).toBe(own.loadBalancingConfig);
  });

  it('keeps our policy when the user config has only other fields', () => {
    const config = build({ loadBalancing: 'metadata_weighted', base: { methodConfig: [] } });
    expect(config).toEqual({ methodConfig: [], loadBalancingConfig: [{ [METADATA_WEIGHTED_POLICY]: {} }] });
  });

  it('does not mutate its input', () => {
    const input: ServiceConfigInput = Object.freeze({
      loadBalancing: 'round_robin',
      retry: Object.freeze({ maxAttempts: 3, retryableStatusCodes: Object.freeze(['UNAVAILABLE']) as never }),
      outlierDetection: Object.freeze({ failurePercentageEjection: Object.freeze({ threshold: 50 }) }),
      base: Object.freeze({}),
    });
    expect(() => buildServiceConfig(input)).not.toThrow();
  });

  describe('what grpc-js makes of it', () => {
    beforeAll(() => setupBalancing());

    it.each<[string, Partial<ServiceConfigInput>]>([
      ['round robin', {}],
      ['p2c with retry and timeout', { loadBalancing: 'p2c_ewma', retry: { maxAttempts: 3 }, timeoutMs: 150 }],
      ['weighted in outlier detection', { loadBalancing: 'metadata_weighted', outlierDetection: { intervalMs: 500, failurePercentageEjection: { threshold: 50 } } }],
    ])('%s: a valid service config', (_label, input) => {
      expect(() => validateServiceConfig(build(input))).not.toThrow();
    });

    it('parses the outlier detection wrapper with our durations and child policy', () => {
      const config = build({
        loadBalancing: 'p2c_ewma',
        outlierDetection: { intervalMs: 500, baseEjectionTimeMs: 5_000, failurePercentageEjection: { threshold: 50, requestVolume: 20, minimumHosts: 2 } },
      });
      const parsed = experimental.parseLoadBalancingConfig((config.loadBalancingConfig as RawLbConfig[])[0]) as unknown as {
        getIntervalMs(): number;
        getBaseEjectionTimeMs(): number;
        getFailurePercentageEjectionConfig(): Record<string, number>;
        getChildPolicy(): experimental.TypedLoadBalancingConfig;
      };
      expect(parsed.getIntervalMs()).toBe(500);
      expect(parsed.getBaseEjectionTimeMs()).toBe(5_000);
      expect(parsed.getFailurePercentageEjectionConfig()).toMatchObject({ threshold: 50, request_volume: 20, minimum_hosts: 2 });
      expect(parsed.getChildPolicy().getLoadBalancerName()).toBe(P2C_EWMA_POLICY);
    });

    it.each<[LoadBalancingPolicy]>([['round_robin'], ['pick_first'], ['p2c_ewma'], ['metadata_weighted']])(
      '%s parses as a registered grpc-js policy',
      (policy) => {
        const config = build({ loadBalancing: policy });
        const parsed = experimental.parseLoadBalancingConfig((config.loadBalancingConfig as RawLbConfig[])[0]);
        expect(parsed.getLoadBalancerName()).toBe(LOAD_BALANCING_POLICIES[policy]);
      },
    );
  });
});

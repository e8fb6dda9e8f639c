import { status as Status } from '@grpc/grpc-js';
import { CONSISTENT_HASH_POLICY } from '../balancing/consistent-hash.balancer.js';
import { METADATA_WEIGHTED_POLICY } from '../balancing/metadata-weighted.balancer.js';
import { P2C_EWMA_POLICY } from '../balancing/p2c-ewma.balancer.js';
import { ROUND_ROBIN_POLICY } from '../balancing/round-robin.balancer.js';

/** Our policy names (what users write) to the names registered with grpc-js. */
export const LOAD_BALANCING_POLICIES = {
  round_robin: 'round_robin',
  pick_first: 'pick_first',
  p2c_ewma: P2C_EWMA_POLICY,
  metadata_weighted: METADATA_WEIGHTED_POLICY,
  consistent_hash: CONSISTENT_HASH_POLICY,
} as const;

/** consistent_hash: which call metadata entry is hashed, and how far above the average load an instance may go. */
export interface ConsistentHashOptions {
  /** Call metadata key (lower-case) whose value is hashed, e.g. `'x-user-id'`. Calls without it are spread round robin. */
  metadataKey: string;
  /**
   * No instance takes more than this times the average in-flight load; a hot key spills to the next instances on the ring.
   * @default 1.25
   */
  balanceFactor?: number;
}

export type LoadBalancingPolicy = keyof typeof LOAD_BALANCING_POLICIES;

/** Retries inside grpc-js, on another instance when the balancer picks one. Only for idempotent methods. */
export interface RetryOptions {
  /** Attempts in all, 2 to 5. */
  maxAttempts: number;
  /** @default 50 */
  initialBackoffMs?: number;
  /** @default 1000 */
  maxBackoffMs?: number;
  /** @default 2 */
  backoffMultiplier?: number;
  /**
   * UNAVAILABLE: the instance was unreachable or refused the call. CANCELLED: grpc-js's code for
   * calls cut by a server's forced shutdown (a client's own cancel is never retried).
   * @default ['UNAVAILABLE', 'CANCELLED']
   */
  retryableStatusCodes?: (keyof typeof Status)[];
}

/** grpc-js's outlier detection around the chosen policy; durations in ms. */
export interface OutlierDetectionOptions {
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  successRateEjection?: { stdevFactor?: number; enforcementPercentage?: number; minimumHosts?: number; requestVolume?: number };
  failurePercentageEjection?: { threshold?: number; enforcementPercentage?: number; minimumHosts?: number; requestVolume?: number };
}

export interface ServiceConfigInput {
  readonly loadBalancing: LoadBalancingPolicy;
  readonly consistentHash?: ConsistentHashOptions;
  /** Request routes need a policy of ours: round_robin then means our own. */
  readonly routed?: boolean;
  readonly retry?: RetryOptions;
  readonly timeoutMs?: number;
  readonly outlierDetection?: OutlierDetectionOptions;
  /** The user's own `grpc.service_config`, parsed; its explicit fields win. */
  readonly base: Readonly<Record<string, unknown>>;
}

const OUTLIER_FIELDS = [
  ['intervalMs', 'interval'],
  ['baseEjectionTimeMs', 'base_ejection_time'],
  ['maxEjectionTimeMs', 'max_ejection_time'],
] as const;

const EJECTION_FIELDS = [
  ['stdevFactor', 'stdev_factor'],
  ['threshold', 'threshold'],
  ['enforcementPercentage', 'enforcement_percentage'],
  ['minimumHosts', 'minimum_hosts'],
  ['requestVolume', 'request_volume'],
] as const;

/** The service config JSON grpc-js reads: policy (wrapped by outlier detection if asked), retries, timeout. */
export function buildServiceConfig(input: ServiceConfigInput): Record<string, unknown> {
  const policy = { [policyName(input)]: policyFields(input) };
  const loadBalancingConfig = input.outlierDetection
    ? [{ outlier_detection: { ...outlierDetectionJson(input.outlierDetection), child_policy: [policy] } }]
    : [policy];
  const methodConfig =
    input.retry || input.timeoutMs !== undefined
      ? [
          {
            name: [{}],
            ...(input.retry ? { retryPolicy: retryPolicyJson(input.retry) } : {}),
            ...(input.timeoutMs !== undefined ? { timeout: durationText(input.timeoutMs) } : {}),
          },
        ]
      : undefined;
  return {
    ...(methodConfig ? { methodConfig } : {}),
    ...input.base,
    loadBalancingConfig: input.base.loadBalancingConfig ?? loadBalancingConfig,
  };
}

function policyName(input: ServiceConfigInput): string {
  return input.routed && input.loadBalancing === 'round_robin' ? ROUND_ROBIN_POLICY : LOAD_BALANCING_POLICIES[input.loadBalancing];
}

function policyFields(input: ServiceConfigInput): Record<string, unknown> {
  if (input.loadBalancing !== 'consistent_hash' || !input.consistentHash) return {};
  const { metadataKey, balanceFactor } = input.consistentHash;
  return { hashKey: metadataKey, ...(balanceFactor !== undefined ? { balanceFactor } : {}) };
}

/** grpc-js reads "0.5s" as 5 ns: durations need all nine fraction digits. */
export function durationText(ms: number): string {
  const { seconds, nanos } = durationObject(ms);
  return `${seconds}.${String(nanos).padStart(9, '0')}s`;
}

/** Rounded to whole nanoseconds first, so 999.9999999 ms carries into the seconds. */
function durationObject(ms: number): { seconds: number; nanos: number } {
  const total = Math.round(ms * 1e6);
  return { seconds: Math.floor(total / 1e9), nanos: total % 1e9 };
}

function retryPolicyJson(retry: RetryOptions): Record<string, unknown> {
  return {
    maxAttempts: retry.maxAttempts,
    initialBackoff: durationText(retry.initialBackoffMs ?? 50),
    maxBackoff: durationText(retry.maxBackoffMs ?? 1_000),
    backoffMultiplier: retry.backoffMultiplier ?? 2,
    retryableStatusCodes: retry.retryableStatusCodes ?? ['UNAVAILABLE', 'CANCELLED'],
  };
}

function outlierDetectionJson(options: OutlierDetectionOptions): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  for (const [ours, theirs] of OUTLIER_FIELDS) {
    const value = options[ours];
    if (value !== undefined) json[theirs] = durationObject(value);
  }
  if (options.maxEjectionPercent !== undefined) json.max_ejection_percent = options.maxEjectionPercent;
  if (options.successRateEjection) json.success_rate_ejection = ejectionJson(options.successRateEjection);
  if (options.failurePercentageEjection) json.failure_percentage_ejection = ejectionJson(options.failurePercentageEjection);
  return json;
}

function ejectionJson(options: Record<string, number | undefined>): Record<string, number> {
  const json: Record<string, number> = {};
  for (const [ours, theirs] of EJECTION_FIELDS) {
    const value = options[ours];
    if (value !== undefined) json[theirs] = value;
  }
  return json;
}

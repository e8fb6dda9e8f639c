import { experimental, status as Status } from '@grpc/grpc-js';
// grpc-js's own service config check, so a bad config fails at startup, not at the first call.
import { validateServiceConfig } from '@grpc/grpc-js/build/src/service-config.js';
import { HASH_KEY_PATTERN } from '../balancing/consistent-hash.balancer.js';
import { isValidVersionRange, type InstanceSelector } from '../balancing/instance-routing.js';
import type { RequestRoute } from '../balancing/request-routes.js';
import { buildServiceConfig, LOAD_BALANCING_POLICIES, type ConsistentHashOptions, type OutlierDetectionOptions, type RetryOptions } from './service-config.js';
import type { DiscoveredClientOptions } from './discovered-client-options.interface.js';
import { failOption as fail } from '../options/invalid-options.error.js';
import { validateServiceName } from '../options/validate-options.js';

const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const EJECTION_KEYS = ['stdevFactor', 'threshold', 'enforcementPercentage', 'minimumHosts', 'requestVolume'];
const PERCENT_KEYS = ['threshold', 'enforcementPercentage'];
const MAX_ROUTES = 32;
const MAX_ROUTE_VALUES = 64;
const MAX_SUBSET_SIZE = 10_000;

/** Checks what a client adds to Nest's gRPC options; Nest and grpc-js check the rest themselves. */
export function validateClientOptions(serviceName: unknown, options: DiscoveredClientOptions | undefined, defaultWaitMs: number): ResolvedClientOptions {
  validateServiceName('serviceName', serviceName);
  if (typeof options !== 'object' || options === null) {
    fail('client options', options, 'pass Nest gRPC client options without url, e.g. { package: "greeter", protoPath }');
  }
  if (typeof options.package !== 'string' && !Array.isArray(options.package)) {
    fail('client options.package', options.package, 'name the proto package, e.g. "greeter"');
  }
  if ('url' in options) fail('client options.url', (options as { url?: unknown }).url, 'leave url out: discovery provides the addresses');
  const loadBalancing = options.loadBalancing ?? 'round_robin';
  if (!Object.hasOwn(LOAD_BALANCING_POLICIES, loadBalancing)) {
    fail('client options.loadBalancing', loadBalancing, `use one of ${Object.keys(LOAD_BALANCING_POLICIES).join(', ')}`);
  }
  const waitTimeoutMs = options.waitTimeoutMs ?? defaultWaitMs;
  if (!Number.isInteger(waitTimeoutMs) || waitTimeoutMs < 0) {
    fail('client options.waitTimeoutMs', waitTimeoutMs, 'use a whole number of milliseconds >= 0');
  }
  if (options.timeoutMs !== undefined) positive('client options.timeoutMs', options.timeoutMs);
  const select = validateSelector('client options.select', options.select);
  const consistentHash = validateConsistentHash(loadBalancing, options.consistentHash);
  const routes = validateRoutes(options.routes);
  if (routes.length > 0 && loadBalancing === 'pick_first') {
    fail('client options.routes', '[...]', 'routes need a policy that spreads calls: round_robin, p2c_ewma, metadata_weighted or consistent_hash');
  }
  const subset = validateSubset(options.subsetSize, options.subsetKey);
  if (options.retry !== undefined) validateRetry(options.retry);
  if (options.outlierDetection !== undefined) validateOutlierDetection(options.outlierDetection);
  const serviceConfig = buildServiceConfig({
    loadBalancing,
    consistentHash,
    routed: routes.length > 0,
    retry: options.retry,
    timeoutMs: options.timeoutMs,
    outlierDetection: options.outlierDetection,
    base: parseUserServiceConfig(options.channelOptions?.['grpc.service_config']),
  });
  try {
    validateServiceConfig(serviceConfig);
  } catch (cause) {
    fail('client options (service config)', serviceConfig, `grpc-js rejects it: ${(cause as Error).message}`, cause);
  }
  validatePolicyConfig(serviceConfig.loadBalancingConfig as object[], options.outlierDetection ? 'client options.outlierDetection' : 'client options.loadBalancing');
  const {
    loadBalancing: _policy,
    waitTimeoutMs: _wait,
    select: _select,
    retry: _retry,
    timeoutMs: _timeout,
    outlierDetection: _od,
    consistentHash: _hash,
    routes: _routes,
    subsetSize: _subsetSize,
    subsetKey: _subsetKey,
    ...nestOptions
  } = options;
  return { nestOptions, waitTimeoutMs, serviceConfig, select, routes, subset };
}

export interface ResolvedClientOptions {
  /** What goes to Nest's ClientGrpcProxy, minus url and channel options we add. */
  readonly nestOptions: Omit<DiscoveredClientOptions, OurClientOption>;
  readonly waitTimeoutMs: number;
  readonly serviceConfig: Record<string, unknown>;
  readonly select: InstanceSelector;
  readonly routes: readonly RequestRoute[];
  /** Undefined: every instance. `key` undefined: the factory's own. */
  readonly subset?: { readonly size: number; readonly key?: string };
}

type OurClientOption =
  | 'loadBalancing'
  | 'waitTimeoutMs'
  | 'select'
  | 'retry'
  | 'timeoutMs'
  | 'outlierDetection'
  | 'consistentHash'
  | 'routes'
  | 'subsetSize'
  | 'subsetKey';

/**
 * grpc-js falls back to pick_first, silently, on a policy config it cannot parse: refuse it here instead.
 * Our policies must be registered by then: ClientFactory's constructor does it, before any client is made.
 */
function validatePolicyConfig(configs: object[], field: string): void {
  if (experimental.selectLbConfigFromList(configs as never, false) !== null) return;
  let reason = 'no entry of loadBalancingConfig names a usable policy';
  try {
    experimental.parseLoadBalancingConfig(configs[0] as never);
  } catch (cause) {
    reason = (cause as Error).message;
  }
  fail(field, configs, `grpc-js cannot use this policy config: ${reason}`);
}

function parseUserServiceConfig(given: unknown): Record<string, unknown> {
  if (given === undefined) return {};
  const field = 'client options.channelOptions["grpc.service_config"]';
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(given));
  } catch (cause) {
    fail(field, given, 'pass service config as a JSON string', cause);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail(field, given, 'pass a JSON object, e.g. {"methodConfig":[...]}');
  }
  return parsed as Record<string, unknown>;
}

function validateSelector(field: string, select: unknown): InstanceSelector {
  if (select === undefined) return {};
  if (typeof select !== 'object' || select === null) fail(field, select, 'pass { metadata?, version?, preferredZone? }');
  const { metadata, version, preferredZone } = select as InstanceSelector;
  if (metadata !== undefined) {
    const ok = typeof metadata === 'object' && metadata !== null && Object.values(metadata).every((value) => ['string', 'number', 'boolean'].includes(typeof value));
    if (!ok) fail(`${field}.metadata`, metadata, 'map metadata keys to string, number or boolean values');
  }
  if (version !== undefined && (typeof version !== 'string' || !isValidVersionRange(version))) {
    fail(`${field}.version`, version, 'use a semver range such as "^1.4.0" or ">=2 <3"');
  }
  if (preferredZone !== undefined && (typeof preferredZone !== 'string' || !NAME_PATTERN.test(preferredZone))) {
    fail(`${field}.preferredZone`, preferredZone, 'use a zone name of letters, digits, ".", "_" or "-"');
  }
  return { metadata: metadata && { ...metadata }, version, preferredZone };
}

function validateConsistentHash(policy: string, options: unknown): ConsistentHashOptions | undefined {
  const field = 'client options.consistentHash';
  if (policy !== 'consistent_hash') {
    if (options !== undefined) fail(field, '{...}', 'set loadBalancing: "consistent_hash" to use it, or leave it out');
    return undefined;
  }
  if (typeof options !== 'object' || options === null) fail(field, options, 'consistent_hash needs { metadataKey: "x-user-id" }: the call metadata entry to hash');
  const { metadataKey, balanceFactor } = options as ConsistentHashOptions;
  if (typeof metadataKey !== 'string' || !HASH_KEY_PATTERN.test(metadataKey)) {
    fail(`${field}.metadataKey`, metadataKey, 'use a lower-case gRPC metadata key (letters, digits, "-", "_", "."), not ending in -bin, not starting with grpc-');
  }
  if (balanceFactor !== undefined && !(typeof balanceFactor === 'number' && balanceFactor > 1 && balanceFactor <= 100)) {
    fail(`${field}.balanceFactor`, balanceFactor, 'use a number above 1 (1.25: no instance above 125 % of the average load)');
  }
  return { metadataKey, balanceFactor };
}

function validateRoutes(routes: unknown): readonly RequestRoute[] {
  if (routes === undefined) return [];
  if (!Array.isArray(routes) || routes.length > MAX_ROUTES) {
    fail('client options.routes', routes, `pass an array of at most ${MAX_ROUTES} routes such as { header: "x-canary", equals: "true", select: { metadata: { canary: true } } }`);
  }
  return routes.map((route: RequestRoute, index): RequestRoute => {
    const field = `client options.routes[${index}]`;
    if (typeof route !== 'object' || route === null) fail(field, route, 'pass { header?, equals?, select, fallback? }');
    const { header, equals, select, fallback } = route;
    if (header !== undefined && (typeof header !== 'string' || !HASH_KEY_PATTERN.test(header))) {
      fail(`${field}.header`, header, 'use a lower-case gRPC metadata key, not ending in -bin, not starting with grpc-; leave it out for a default route');
    }
    if (equals !== undefined) {
      const values = typeof equals === 'string' ? [equals] : equals;
      if (!Array.isArray(values) || values.length === 0 || values.length > MAX_ROUTE_VALUES || !values.every((value) => typeof value === 'string')) {
        fail(`${field}.equals`, equals, `use a string or an array of 1 to ${MAX_ROUTE_VALUES} strings`);
      }
      if (header === undefined) fail(`${field}.equals`, equals, 'name the header whose value it matches');
    }
    if (select === undefined) fail(`${field}.select`, select, 'say which instances the route picks, e.g. { metadata: { canary: true } }');
    if (fallback !== undefined && fallback !== 'fail' && fallback !== 'all') fail(`${field}.fallback`, fallback, 'use "fail" or "all"');
    return {
      header,
      equals: typeof equals === 'string' ? equals : equals && [...equals],
      select: validateSelector(`${field}.select`, select),
      fallback: fallback ?? 'fail',
    };
  });
}

function validateSubset(size: unknown, key: unknown): ResolvedClientOptions['subset'] {
  if (size === undefined) {
    if (key !== undefined) fail('client options.subsetKey', key, 'set subsetSize too, or leave subsetKey out');
    return undefined;
  }
  if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > MAX_SUBSET_SIZE) {
    fail('client options.subsetSize', size, `use a whole number of instances from 1 to ${MAX_SUBSET_SIZE}`);
  }
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) {
    fail('client options.subsetKey', key, 'use a non-empty string of at most 256 characters, e.g. the pod name');
  }
  return { size: size as number, key: key as string | undefined };
}

function validateRetry(retry: RetryOptions): void {
  if (typeof retry !== 'object' || retry === null) fail('client options.retry', retry, 'pass { maxAttempts: 3 }');
  if (!Number.isInteger(retry.maxAttempts) || retry.maxAttempts < 2 || retry.maxAttempts > 5) {
    fail('client options.retry.maxAttempts', retry.maxAttempts, 'use 2 to 5 attempts in all (grpc-js caps retries at 5)');
  }
  for (const key of ['initialBackoffMs', 'maxBackoffMs'] as const) if (retry[key] !== undefined) positive(`client options.retry.${key}`, retry[key]);
  if (retry.backoffMultiplier !== undefined && !(typeof retry.backoffMultiplier === 'number' && retry.backoffMultiplier >= 1)) {
    fail('client options.retry.backoffMultiplier', retry.backoffMultiplier, 'use a number >= 1');
  }
  for (const code of retry.retryableStatusCodes ?? []) {
    if (typeof code !== 'string' || !Object.hasOwn(Status, code) || code === 'OK') {
      fail('client options.retry.retryableStatusCodes', code, 'use gRPC status names such as "UNAVAILABLE"');
    }
  }
}

function validateOutlierDetection(options: OutlierDetectionOptions): void {
  if (typeof options !== 'object' || options === null) fail('client options.outlierDetection', options, 'pass an object such as { failurePercentageEjection: {} }');
  for (const key of ['intervalMs', 'baseEjectionTimeMs', 'maxEjectionTimeMs'] as const) {
    if (options[key] !== undefined) positive(`client options.outlierDetection.${key}`, options[key]);
  }
  if (options.maxEjectionPercent !== undefined && !(Number.isInteger(options.maxEjectionPercent) && options.maxEjectionPercent >= 0 && options.maxEjectionPercent <= 100)) {
    fail('client options.outlierDetection.maxEjectionPercent', options.maxEjectionPercent, 'use a whole percentage from 0 to 100');
  }
  for (const kind of ['successRateEjection', 'failurePercentageEjection'] as const) {
    const value = options[kind] as Record<string, unknown> | undefined;
    if (value === undefined) continue;
    for (const [key, number] of Object.entries(value)) {
      const field = `client options.outlierDetection.${kind}.${key}`;
      if (!EJECTION_KEYS.includes(key) || typeof number !== 'number' || number < 0) {
        fail(field, number, `use numbers >= 0 for ${EJECTION_KEYS.join(', ')}`);
      }
      if (PERCENT_KEYS.includes(key) && number > 100) fail(field, number, 'use a percentage from 0 to 100');
    }
  }
}

function positive(field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(field, value, 'use a number of milliseconds > 0');
}

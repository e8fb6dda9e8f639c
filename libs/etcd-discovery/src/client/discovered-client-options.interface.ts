import type { InjectionToken, ModuleMetadata } from '@nestjs/common';
import type { GrpcOptions } from '@nestjs/microservices';
import type { InstanceSelector } from '../balancing/instance-routing.js';
import type { RequestRoute } from '../balancing/request-routes.js';
import type { ConsistentHashOptions, LoadBalancingPolicy, OutlierDetectionOptions, RetryOptions } from './service-config.js';

export type { ConsistentHashOptions, InstanceSelector, LoadBalancingPolicy, OutlierDetectionOptions, RequestRoute, RetryOptions };

/**
 * Everything Nest's own gRPC client takes (package, protoPath, loader.includeDirs, credentials,
 * channelOptions, keepalive, message sizes...) except `url`, which discovery provides.
 */
export interface DiscoveredClientOptions extends Omit<GrpcOptions['options'], 'url' | 'gracefulShutdown' | 'onLoadPackageDefinition'> {
  /**
   * How calls are spread over live instances: `round_robin`, `pick_first`, `p2c_ewma` (least loaded
   * of two, by in-flight calls and latency), `metadata_weighted` (smooth weighted round robin on
   * the records' `Metadata.weight`) or `consistent_hash` (a call metadata entry picks the instance,
   * with bounded load; needs `consistentHash`).
   * @default 'round_robin'
   */
  loadBalancing?: LoadBalancingPolicy;
  /** The hashed call metadata entry and the load bound, for `loadBalancing: 'consistent_hash'`. */
  consistentHash?: ConsistentHashOptions;
  /** Which instances may be called at all (metadata match, semver range, preferred zone). */
  select?: InstanceSelector;
  /**
   * Routing per call from its metadata, within `select`: the first route whose `header` matches sends the
   * call to the instances its `select` picks, e.g. `{ header: 'x-canary', equals: 'true', select: { metadata:
   * { canary: true } } }`. Calls no route matches go to every instance. Not with `pick_first`.
   */
  routes?: RequestRoute[];
  /**
   * Connect to at most this many instances of the service, chosen by rendezvous hashing on `subsetKey`
   * (stable when instances join or leave); each route adds its own subset. Unset: every instance.
   */
  subsetSize?: number;
  /**
   * What this client's subset is derived from; clients with the same key pick the same subset.
   * @default a random key per ClientFactory (per process)
   */
  subsetKey?: string;
  /** Retry failed attempts inside grpc-js (only for idempotent methods). */
  retry?: RetryOptions;
  /** Deadline applied to every call of this client, ms. */
  timeoutMs?: number;
  /** Wrap the policy in grpc-js's outlier detection (ejects instances by success rate or failure percentage). */
  outlierDetection?: OutlierDetectionOptions;
  /**
   * How long `getClient` / `getService` wait for a first live instance before erroring;
   * defaults to the module's `discoveryTimeoutMs`.
   */
  waitTimeoutMs?: number;
}

/** One client registered with `EtcdDiscoveryModule.forFeature()` for `@InjectDiscoveredClient()`. */
export interface DiscoveredClientRegistration {
  serviceName: string;
  options: DiscoveredClientOptions;
}

/** One client registered with `EtcdDiscoveryModule.forFeatureAsync()`: its options come from a factory. */
export interface DiscoveredClientAsyncRegistration {
  serviceName: string;
  /** Modules exporting what `inject` names. */
  imports?: NonNullable<ModuleMetadata['imports']>;
  inject?: InjectionToken[];
  useFactory: (...args: any[]) => DiscoveredClientOptions | Promise<DiscoveredClientOptions>;
}

import type { InjectionToken, ModuleMetadata } from '@nestjs/common';
import type { GrpcOptions } from '@nestjs/microservices';
import type { InstanceSelector } from '../balancing/instance-routing.js';
import type { LoadBalancingPolicy, OutlierDetectionOptions, RetryOptions } from './service-config.js';

export type { InstanceSelector, LoadBalancingPolicy, OutlierDetectionOptions, RetryOptions };

/**
 * Everything Nest's own gRPC client takes (package, protoPath, loader.includeDirs, credentials,
 * channelOptions, keepalive, message sizes...) except `url`, which discovery provides.
 */
export interface DiscoveredClientOptions extends Omit<GrpcOptions['options'], 'url' | 'gracefulShutdown' | 'onLoadPackageDefinition'> {
  /**
   * How calls are spread over live instances: `round_robin`, `pick_first`, `p2c_ewma` (least loaded
   * of two, by in-flight calls and latency) or `metadata_weighted` (smooth weighted round robin on
   * the records' `Metadata.weight`).
   * @default 'round_robin'
   */
  loadBalancing?: LoadBalancingPolicy;
  /** Which instances may be called at all (metadata match, semver range, preferred zone). */
  select?: InstanceSelector;
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

import type { GrpcOptions } from '@nestjs/microservices';

/** Load-balancing policies a discovered client can use. */
export type LoadBalancingPolicy = 'round_robin' | 'pick_first';

/**
 * Everything Nest's own gRPC client takes (package, protoPath, loader.includeDirs, credentials,
 * channelOptions, keepalive, message sizes...) except `url`, which discovery provides.
 */
export interface DiscoveredClientOptions extends Omit<GrpcOptions['options'], 'url' | 'gracefulShutdown' | 'onLoadPackageDefinition'> {
  /**
   * How calls are spread over live instances.
   * @default 'round_robin'
   */
  loadBalancing?: LoadBalancingPolicy;
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

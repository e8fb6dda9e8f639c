import { Logger } from '@nestjs/common';
import { ClientGrpcProxy, type ClientGrpc } from '@nestjs/microservices';
import { defer, first, map, throwError, timeout, type Observable } from 'rxjs';
import { randomUUID } from 'node:crypto';
import { ETCD_SCHEME, INSTANCE_SELECTOR_OPTION, INSTANCE_SOURCE_OPTION, INSTANCE_SUBSET_OPTION } from '../balancing/etcd.resolver.js';
import { REQUEST_ROUTES_OPTION, setupBalancing } from '../balancing/index.js';
import type { InstanceSource } from '../discovery/instance-source.js';
import { validateClientOptions } from './validate-client-options.js';
import { validateServiceName } from '../options/validate-options.js';
import type { ServiceInstance } from '../discovery/service-instance.js';
import type { DiscoveredClientOptions } from './discovered-client-options.interface.js';
import { NoLiveInstanceError } from './no-live-instance.error.js';
import { optionsFingerprint } from './options-fingerprint.js';
import { withCallCounting } from '../telemetry/index.js';

/** Distinct clients of one service beyond which options are likely built per request. */
const CLIENTS_PER_SERVICE_WARNING = 8;

/**
 * Hands out long-lived, balanced `ClientGrpc` proxies for discovered services. One proxy per
 * service and options, cached: membership changes reach its channel through the `etcd` resolver,
 * so the proxy is never rebuilt and in-flight calls are never dropped.
 */
export class ClientFactory {
  private readonly clients = new Map<string, ClientGrpcProxy>();
  private readonly perService = new Map<string, number>();
  private readonly logger = new Logger('EtcdDiscovery');
  /** Subsets of clients without a `subsetKey` derive from this: random, so processes spread over the fleet. */
  private readonly subsetKey = randomUUID();

  constructor(
    private readonly source: InstanceSource,
    private readonly defaultWaitMs: number,
  ) {
    setupBalancing();
  }

  /** Emits the balanced client once the service has a live instance, then completes. */
  getClient(serviceName: string, options: DiscoveredClientOptions): Observable<ClientGrpc> {
    return defer(() => {
      const client = this.createClient(serviceName, options);
      const waitMs = options.waitTimeoutMs ?? this.defaultWaitMs;
      return this.source.watch(serviceName).pipe(
        first((instances) => instances.length > 0),
        timeout({
          first: waitMs,
          with: () =>
            throwError(
              () => new NoLiveInstanceError(serviceName, this.source.prefixOf(serviceName), waitMs, this.source.unreachableReason?.(serviceName)),
            ),
        }),
        map(() => client),
      );
    });
  }

  /** `getClient` narrowed to one typed gRPC service of the proto package. */
  getService<T extends object>(serviceName: string, grpcServiceName: string, options: DiscoveredClientOptions): Observable<T> {
    return this.getClient(serviceName, options).pipe(map((client) => client.getService<T>(grpcServiceName)));
  }

  /** The live instances of a service, re-emitted on every membership change. */
  instances(serviceName: string): Observable<readonly ServiceInstance[]> {
    return defer(() => {
      validateServiceName('serviceName', serviceName);
      return this.source.watch(serviceName);
    });
  }

  /**
   * The balanced client at once, without waiting: calls made before an instance is live fail fast
   * with UNAVAILABLE naming the service (or queue until their deadline with waitForReady).
   */
  createClient(serviceName: string, options: DiscoveredClientOptions): ClientGrpc {
    const resolved = validateClientOptions(serviceName, options, this.defaultWaitMs);
    // Only what shapes the channel: the wait timeout is a getClient() matter, not a new channel.
    const { waitTimeoutMs: _wait, ...channelShaping } = resolved;
    const cacheKey = `${serviceName}\n${optionsFingerprint(channelShaping)}`;
    let client = this.clients.get(cacheKey);
    if (!client) {
      this.countClient(serviceName);
      client = new ClientGrpcProxy({
        ...resolved.nestOptions,
        url: `${ETCD_SCHEME}:///${serviceName}`,
        channelOptions: {
          ...resolved.nestOptions.channelOptions,
          ...withCallCounting(serviceName, resolved.nestOptions.channelOptions),
          'grpc.service_config': JSON.stringify(resolved.serviceConfig),
          // With a proxy variable set, grpc-js would send our custom-scheme target to the proxy.
          'grpc.enable_http_proxy': 0,
          [INSTANCE_SOURCE_OPTION]: this.source,
          [INSTANCE_SELECTOR_OPTION]: resolved.select,
          [REQUEST_ROUTES_OPTION]: resolved.routes,
          ...(resolved.subset ? { [INSTANCE_SUBSET_OPTION]: { size: resolved.subset.size, clientKey: resolved.subset.key ?? this.subsetKey } } : {}),
        },
      });
      this.clients.set(cacheKey, client);
    }
    return client;
  }

  /** Closes every channel this factory opened. */
  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    this.perService.clear();
  }

  /**
   * Each distinct options object is a channel with connections to every instance, kept until
   * shutdown. A few per service is normal (policies, selectors); more usually means options built
   * per request (a selector from request input), which grows without bound: say so, at 9, 16, 32...
   */
  private countClient(serviceName: string): void {
    const count = (this.perService.get(serviceName) ?? 0) + 1;
    this.perService.set(serviceName, count);
    if (count === CLIENTS_PER_SERVICE_WARNING + 1 || (count > CLIENTS_PER_SERVICE_WARNING && (count & (count - 1)) === 0)) {
      this.logger.warn(
        `${count} distinct clients (channels) for "${serviceName}": options that differ per call each open one, kept until ` +
          'shutdown; create clients once with fixed options and reuse them',
      );
    }
  }
}

import { Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { ClientFactory } from '../client/client-factory.js';
import { DEFAULT_DISCOVERY_TIMEOUT_MS } from '../options/defaults.js';
import { StaticInstanceSource, type StaticInstance } from './static-instance-source.js';

export interface EtcdDiscoveryTestingOptions {
  /** Live instances per service name, e.g. `{ greeter: ['127.0.0.1:50051'] }`; change them later with `StaticInstanceSource.set()`. */
  instances?: Record<string, readonly StaticInstance[]>;
  /**
   * How long `getClient` / `getService` wait for a first instance.
   * @default 10000
   */
  discoveryTimeoutMs?: number;
  /**
   * Register globally, so `EtcdDiscoveryModule.forFeature()` clients resolve against it.
   * @default true
   */
  isGlobal?: boolean;
}

/**
 * Stands in for `EtcdDiscoveryModule.forRoot()` in tests: no etcd, the same `ClientFactory` (resolver,
 * policies, routing) over instances the test names, e.g. local gRPC servers. Use it directly, or with
 * `Test.createTestingModule({ imports: [AppModule] }).overrideModule(DISCOVERY)
 * .useModule(EtcdDiscoveryTestingModule.forRoot({ instances: { greeter: [address] } }))`, where `DISCOVERY` is
 * the `EtcdDiscoveryModule.forRoot(...)` result the app module imports (Nest matches it by identity).
 */
@Module({})
export class EtcdDiscoveryTestingModule implements OnApplicationShutdown {
  constructor(private readonly clients: ClientFactory) {}

  static forRoot(options: EtcdDiscoveryTestingOptions = {}): DynamicModule {
    return {
      module: EtcdDiscoveryTestingModule,
      global: options.isGlobal ?? true,
      providers: [
        { provide: StaticInstanceSource, useFactory: () => new StaticInstanceSource(options.instances ?? {}) },
        {
          provide: ClientFactory,
          useFactory: (source: StaticInstanceSource) => new ClientFactory(source, options.discoveryTimeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS),
          inject: [StaticInstanceSource],
        },
      ],
      exports: [ClientFactory, StaticInstanceSource],
    };
  }

  onApplicationShutdown(): void {
    this.clients.close();
  }
}

import { Inject, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { ClientFactory } from '../client/client-factory.js';
import type { DiscoveredClientRegistration } from '../client/discovered-client-options.interface.js';
import { DiscoveryHub } from '../discovery/discovery-hub.js';
import { EtcdRegistration } from '../server/etcd-registration.js';
import { ETCD_CLIENT, ETCD_DISCOVERY_OPTIONS } from './etcd-discovery.constants.js';
import type {
  EtcdDiscoveryModuleAsyncOptions,
  EtcdDiscoveryModuleOptions,
  EtcdDiscoveryOptionsFactory,
} from '../options/etcd-discovery-options.interface.js';
import { coreProviders, discoveredClientProviders, exportedProviders } from './etcd-discovery.providers.js';

/**
 * Service discovery for Nest gRPC apps on etcd. `forRoot` once per app; `forFeature` in any module
 * that wants `@InjectDiscoveredClient()` clients.
 */
@Module({})
export class EtcdDiscoveryModule implements OnApplicationShutdown {
  constructor(
    @Inject(ETCD_CLIENT) private readonly client: Etcd3,
    private readonly registration: EtcdRegistration,
    private readonly clients: ClientFactory,
    private readonly hub: DiscoveryHub,
  ) {}

  static forRoot(options: EtcdDiscoveryModuleOptions = {}): DynamicModule {
    return {
      module: EtcdDiscoveryModule,
      global: options.isGlobal ?? false,
      providers: [{ provide: ETCD_DISCOVERY_OPTIONS, useValue: options }, ...coreProviders],
      exports: exportedProviders,
    };
  }

  static forRootAsync(options: EtcdDiscoveryModuleAsyncOptions): DynamicModule {
    return {
      module: EtcdDiscoveryModule,
      global: options.isGlobal ?? false,
      imports: options.imports ?? [],
      providers: [...asyncOptionsProviders(options), ...coreProviders],
      exports: exportedProviders,
    };
  }

  /** Registers discovered clients for injection; needs `forRoot` (global or imported) in the app. */
  static forFeature(clients: DiscoveredClientRegistration[]): DynamicModule {
    const providers = discoveredClientProviders(clients);
    return {
      module: EtcdDiscoveryFeatureModule,
      providers,
      exports: providers.map((provider) => (provider as { provide: string }).provide),
    };
  }

  /**
   * In order: withdraw the registration (a no-op if the gRPC server already did, as it does before
   * closing), revoke the lease, stop watches, close channels, then the etcd client. etcd3's close()
   * alone would leave lease keepalives running.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.registration.withdraw();
    this.clients.close();
    this.hub.close();
    this.client.close();
  }
}

/** Host of `forFeature` providers; the ClientFactory they need comes from the global or imported root. */
@Module({})
export class EtcdDiscoveryFeatureModule {}

function asyncOptionsProviders(options: EtcdDiscoveryModuleAsyncOptions): Provider[] {
  if (options.useFactory) {
    return [{ provide: ETCD_DISCOVERY_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }];
  }
  const factoryClass = options.useClass ?? options.useExisting;
  if (!factoryClass) {
    throw new Error('nestjs-etcd-discovery: forRootAsync() needs useFactory, useClass or useExisting');
  }
  const factoryProvider: Provider[] = options.useClass ? [{ provide: options.useClass, useClass: options.useClass }] : [];
  return [
    ...factoryProvider,
    {
      provide: ETCD_DISCOVERY_OPTIONS,
      useFactory: (factory: EtcdDiscoveryOptionsFactory) => factory.createEtcdDiscoveryOptions(),
      inject: [factoryClass],
    },
  ];
}

import { Inject, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { ClientFactory } from '../client/client-factory.js';
import type { DiscoveredClientAsyncRegistration, DiscoveredClientRegistration } from '../client/discovered-client-options.interface.js';
import { DiscoveryHub } from '../discovery/discovery-hub.js';
import { EtcdRegistration } from '../server/etcd-registration.js';
import type { EtcdDiscoveryModuleAsyncOptions, EtcdDiscoveryModuleOptions } from '../options/etcd-discovery-options.interface.js';
import { ETCD_CLIENT } from './etcd-discovery.constants.js';
import { ASYNC_OPTIONS_TYPE, ConfigurableEtcdDiscoveryModule } from './etcd-discovery.module-definition.js';
import { coreProviders, discoveredClientAsyncProviders, discoveredClientProviders, exportedProviders } from './etcd-discovery.providers.js';

/**
 * Service discovery for Nest gRPC apps on etcd. `forRoot` once per app; `forFeature` in any module
 * that wants `@InjectDiscoveredClient()` clients.
 */
@Module({})
export class EtcdDiscoveryModule extends ConfigurableEtcdDiscoveryModule implements OnApplicationShutdown {
  constructor(
    @Inject(ETCD_CLIENT) private readonly client: Etcd3,
    private readonly registration: EtcdRegistration,
    private readonly clients: ClientFactory,
    private readonly hub: DiscoveryHub,
  ) {
    super();
  }

  static override forRoot(options: EtcdDiscoveryModuleOptions = {}): DynamicModule {
    return withCoreProviders(super.forRoot(options));
  }

  /** `useFactory` + `inject`, `useClass` or `useExisting` with an `EtcdDiscoveryOptionsFactory`; `imports`, `isGlobal`. */
  static override forRootAsync(options: EtcdDiscoveryModuleAsyncOptions): DynamicModule {
    if (!options?.useFactory && !options?.useClass && !options?.useExisting) {
      throw new Error('nestjs-etcd-discovery: forRootAsync() needs useFactory, useClass or useExisting');
    }
    return withCoreProviders(super.forRootAsync(options as typeof ASYNC_OPTIONS_TYPE));
  }

  /** Registers discovered clients for injection; needs `forRoot` (global or imported) in the app. */
  static forFeature(clients: DiscoveredClientRegistration[]): DynamicModule {
    return featureModule(discoveredClientProviders(clients), []);
  }

  /** `forFeature` with each client's options made by a factory (e.g. from ConfigService); `imports` for its dependencies. */
  static forFeatureAsync(clients: DiscoveredClientAsyncRegistration[]): DynamicModule {
    return featureModule(
      discoveredClientAsyncProviders(clients),
      clients.flatMap((client) => client.imports ?? []),
    );
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

function withCoreProviders(definition: DynamicModule): DynamicModule {
  return { ...definition, providers: [...(definition.providers ?? []), ...coreProviders], exports: exportedProviders };
}

function featureModule(providers: Provider[], imports: NonNullable<DynamicModule['imports']>): DynamicModule {
  return {
    module: EtcdDiscoveryFeatureModule,
    imports,
    providers,
    exports: providers.map((provider) => (provider as { provide: string }).provide),
  };
}

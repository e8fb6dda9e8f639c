import { Logger, type Provider } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { ClientFactory } from '../client/client-factory.js';
import type { DiscoveredClientAsyncRegistration, DiscoveredClientRegistration } from '../client/discovered-client-options.interface.js';
import { discoveredClientToken } from '../client/inject-discovered-client.decorator.js';
import { DiscoveryHub } from '../discovery/discovery-hub.js';
import { EtcdDiscoveryHealthIndicator } from '../health/etcd-discovery.health-indicator.js';
import { AddressPolicy } from '../registry/address-policy.js';
import { createEtcdClient } from '../registry/etcd-client.factory.js';
import { EtcdActivity, etcdActivityOf } from '../registry/etcd-activity.js';
import { EtcdRegistration } from '../server/etcd-registration.js';
import { ETCD_CLIENT, ETCD_DISCOVERY_OPTIONS, RESOLVED_DISCOVERY_OPTIONS } from './etcd-discovery.constants.js';
import type { EtcdDiscoveryModuleOptions } from '../options/etcd-discovery-options.interface.js';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import { isLoopbackEtcdHost, validateOptions } from '../options/validate-options.js';
import { telemetry } from '../telemetry/index.js';

const REGISTRATION_METRICS = Symbol('nestjs-etcd-discovery:registration-metrics');

/** Providers shared by forRoot and forRootAsync; they differ only in how ETCD_DISCOVERY_OPTIONS is made. */
export const coreProviders: Provider[] = [
  {
    provide: RESOLVED_DISCOVERY_OPTIONS,
    useFactory: (options: EtcdDiscoveryModuleOptions) => validateOptions(options),
    inject: [ETCD_DISCOVERY_OPTIONS],
  },
  {
    provide: ETCD_CLIENT,
    useFactory: (options: ResolvedDiscoveryOptions) => {
      warnOnClearTextPassword(options.etcd);
      return createEtcdClient(options.etcd);
    },
    inject: [RESOLVED_DISCOVERY_OPTIONS],
  },
  {
    provide: DiscoveryHub,
    useFactory: (client: Etcd3, options: ResolvedDiscoveryOptions) =>
      new DiscoveryHub(client, options.namespace, new AddressPolicy(options.allowedAddresses), { namespaceWatchFrom: options.namespaceWatchFrom }),
    inject: [ETCD_CLIENT, RESOLVED_DISCOVERY_OPTIONS],
  },
  {
    provide: ClientFactory,
    useFactory: (hub: DiscoveryHub, options: ResolvedDiscoveryOptions) => new ClientFactory(hub, options.discoveryTimeoutMs),
    inject: [DiscoveryHub, RESOLVED_DISCOVERY_OPTIONS],
  },
  {
    provide: EtcdRegistration,
    useFactory: (client: Etcd3, options: ResolvedDiscoveryOptions) => new EtcdRegistration(client, options),
    inject: [ETCD_CLIENT, RESOLVED_DISCOVERY_OPTIONS],
  },
  {
    // Nothing injects it: made at startup so the registration's states reach the metrics from the first one.
    provide: REGISTRATION_METRICS,
    useFactory: (registration: EtcdRegistration) => telemetry.followRegistration(registration.state$),
    inject: [EtcdRegistration],
  },
  {
    provide: EtcdDiscoveryHealthIndicator,
    useFactory: (registration: EtcdRegistration, hub: DiscoveryHub, client: Etcd3, options: ResolvedDiscoveryOptions) =>
      new EtcdDiscoveryHealthIndicator(registration, hub, etcdActivityOf(client) ?? new EtcdActivity(), options),
    inject: [EtcdRegistration, DiscoveryHub, ETCD_CLIENT, RESOLVED_DISCOVERY_OPTIONS],
  },
];

/** A password sent over plain http to another machine can be read on the way: say so once. */
export function warnOnClearTextPassword(etcd: ResolvedDiscoveryOptions['etcd'], logger: Pick<Logger, 'warn'> = new Logger('EtcdDiscovery')): void {
  if (!etcd.auth) return;
  const exposed = etcd.hosts.filter((host) => host.startsWith('http://') && !isLoopbackEtcdHost(host));
  if (exposed.length === 0) return;
  logger.warn(
    `etcd.auth is sent in clear text to ${exposed.join(', ')}: use https:// hosts with etcd.tls outside a trusted network`,
  );
}

export const exportedProviders = [ClientFactory, EtcdRegistration, EtcdDiscoveryHealthIndicator];

/** One provider per registered client, for `@InjectDiscoveredClient(serviceName)`. */
export function discoveredClientProviders(clients: readonly DiscoveredClientRegistration[]): Provider[] {
  return clients.map(({ serviceName, options }) => ({
    provide: discoveredClientToken(serviceName),
    useFactory: (factory: ClientFactory) => factory.createClient(serviceName, options),
    inject: [ClientFactory],
  }));
}

/** As `discoveredClientProviders`, with each client's options from its factory. */
export function discoveredClientAsyncProviders(clients: readonly DiscoveredClientAsyncRegistration[]): Provider[] {
  return clients.map(({ serviceName, useFactory, inject = [] }) => ({
    provide: discoveredClientToken(serviceName),
    useFactory: async (factory: ClientFactory, ...args: unknown[]) => factory.createClient(serviceName, await useFactory(...args)),
    inject: [ClientFactory, ...inject],
  }));
}

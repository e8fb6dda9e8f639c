import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { EtcdDiscoveryModuleOptions } from '../options/etcd-discovery-options.interface.js';

/**
 * forRoot / forRootAsync (useFactory, useClass, useExisting with `createEtcdDiscoveryOptions()`) and the
 * options token come from Nest's own builder; `isGlobal` is an extra that makes the module global.
 */
export const {
  ConfigurableModuleClass: ConfigurableEtcdDiscoveryModule,
  MODULE_OPTIONS_TOKEN: ETCD_DISCOVERY_OPTIONS,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<EtcdDiscoveryModuleOptions>({ moduleName: 'EtcdDiscovery' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createEtcdDiscoveryOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

import { Module } from '@nestjs/common';
import { EtcdDiscoveryModule } from 'nestjs-etcd-discovery';
import { GreeterController } from './greeter.controller.js';

const env = process.env;

@Module({
  imports: [
    EtcdDiscoveryModule.forRoot({
      etcd: {
        hosts: (env.ETCD_HOSTS ?? 'http://127.0.0.1:2379').split(','),
        ...(env.ETCD_USERNAME ? { auth: { username: env.ETCD_USERNAME, password: env.ETCD_PASSWORD ?? '' } } : {}),
      },
      namespace: env.DISCOVERY_NAMESPACE,
      registration: {
        serviceName: 'greeter',
        metadata: {
          version: env.GREETER_VERSION ?? '1.0.0',
          zone: env.GREETER_ZONE ?? 'local',
          ...(env.GREETER_WEIGHT === undefined ? {} : { weight: Number(env.GREETER_WEIGHT) }),
        },
      },
      server: {
        ttlSeconds: env.LEASE_TTL_SECONDS ? Number(env.LEASE_TTL_SECONDS) : undefined,
        drainDelayMs: env.DRAIN_DELAY_MS ? Number(env.DRAIN_DELAY_MS) : undefined,
      },
    }),
  ],
  controllers: [GreeterController],
})
export class AppModule {}

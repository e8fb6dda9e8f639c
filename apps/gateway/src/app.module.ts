import { Module } from '@nestjs/common';
import { EtcdDiscoveryModule } from 'nestjs-etcd-discovery';
import { GatewayController } from './gateway.controller.js';
import { GREETER_CLIENT_OPTIONS } from './greeter-client.options.js';

const env = process.env;

@Module({
  imports: [
    EtcdDiscoveryModule.forRoot({
      isGlobal: true,
      etcd: {
        hosts: (env.ETCD_HOSTS ?? 'http://127.0.0.1:2379').split(','),
        ...(env.ETCD_USERNAME ? { auth: { username: env.ETCD_USERNAME, password: env.ETCD_PASSWORD ?? '' } } : {}),
      },
      namespace: env.DISCOVERY_NAMESPACE,
    }),
    EtcdDiscoveryModule.forFeature([{ serviceName: 'greeter', options: GREETER_CLIENT_OPTIONS }]),
  ],
  controllers: [GatewayController],
})
export class AppModule {}

import { Module } from '@nestjs/common';
import { EtcdDiscoveryModule } from 'nestjs-etcd-discovery';
import { GatewayController } from './gateway.controller.js';
import { GREETER_CLIENT_OPTIONS } from './greeter-client.options.js';

@Module({
  imports: [
    EtcdDiscoveryModule.forRoot({
      isGlobal: true,
      etcd: { hosts: (process.env.ETCD_HOSTS ?? 'http://127.0.0.1:2379').split(',') },
      namespace: process.env.DISCOVERY_NAMESPACE,
    }),
    EtcdDiscoveryModule.forFeature([{ serviceName: 'greeter', options: GREETER_CLIENT_OPTIONS }]),
  ],
  controllers: [GatewayController],
})
export class AppModule {}

// forFeatureAsync: a client's options made by a factory with injected dependencies (as from ConfigService), and
// forRootAsync's guard. Discovery runs against nestjs-etcd-discovery/testing's static instances: what is tested
// here is the module wiring, not etcd.
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ClientGrpc } from '@nestjs/microservices';
import { firstValueFrom, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InjectDiscoveredClient } from '../../libs/etcd-discovery/src/client/inject-discovered-client.decorator.js';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import { EtcdDiscoveryTestingModule } from '../../libs/etcd-discovery/src/testing/etcd-discovery-testing.module.js';
import { GREETER_PROTO_PATH, GreeterServer } from '../support/grpc-servers.js';

interface Greeter {
  sayHello(request: { name: string }): Observable<{ message: string; address: string }>;
}

const SETTINGS = Symbol('SETTINGS');

@Module({ providers: [{ provide: SETTINGS, useValue: { greeterPackage: 'greeter', protoPath: GREETER_PROTO_PATH } }], exports: [SETTINGS] })
class SettingsModule {}

describe('EtcdDiscoveryModule.forFeatureAsync', () => {
  let server: GreeterServer;
  beforeAll(async () => {
    server = await GreeterServer.start();
  });
  afterAll(() => server.forceShutdown());

  it('makes each client from its factory, with the injected settings, for @InjectDiscoveredClient', async () => {
    const made: unknown[] = [];

    @Injectable()
    class HelloService {
      constructor(@InjectDiscoveredClient('greeter') readonly client: ClientGrpc) {}
    }

    @Module({
      imports: [
        EtcdDiscoveryTestingModule.forRoot({ instances: { greeter: [`127.0.0.1:${server.port}`] } }),
        EtcdDiscoveryModule.forFeatureAsync([
          {
            serviceName: 'greeter',
            imports: [SettingsModule],
            inject: [SETTINGS],
            useFactory: async (settings: { greeterPackage: string; protoPath: string }) => {
              made.push(settings);
              return { package: settings.greeterPackage, protoPath: settings.protoPath, loadBalancing: 'p2c_ewma' as const };
            },
          },
        ]),
      ],
      providers: [HelloService],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const greeter = app.get(HelloService).client.getService<Greeter>('Greeter');
      await expect(firstValueFrom(greeter.sayHello({ name: 'async' }))).resolves.toMatchObject({ message: 'hello async', address: String(server.port) });
      expect(made).toEqual([{ greeterPackage: 'greeter', protoPath: GREETER_PROTO_PATH }]);
    } finally {
      await app.close();
    }
  });

  it('forRootAsync without useFactory, useClass or useExisting fails with a message naming them', () => {
    expect(() => EtcdDiscoveryModule.forRootAsync({})).toThrow(/forRootAsync\(\) needs useFactory, useClass or useExisting/);
  });
});

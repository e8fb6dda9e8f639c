// nestjs-etcd-discovery/testing, as a user's unit test would use it: the app module imports the real
// EtcdDiscoveryModule.forRoot(), the test swaps it for EtcdDiscoveryTestingModule with @nestjs/testing's overrideModule, and
// calls through @InjectDiscoveredClient and ClientFactory reach local gRPC servers. No etcd is started.
import { Injectable, Module } from '@nestjs/common';
import type { ClientGrpc } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { ClientFactory, EtcdDiscoveryModule, InjectDiscoveredClient } from 'nestjs-etcd-discovery';
import { EtcdDiscoveryTestingModule, StaticInstanceSource } from 'nestjs-etcd-discovery/testing';
import { firstValueFrom, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GREETER_PROTO_PATH, GreeterServer } from '../support/grpc-servers.js';

interface Greeter {
  sayHello(request: { name: string }): Observable<{ message: string; address: string }>;
}

const GREETER_CLIENT = { package: 'greeter', protoPath: GREETER_PROTO_PATH };

@Injectable()
class HelloService {
  constructor(
    @InjectDiscoveredClient('greeter') private readonly client: ClientGrpc,
    readonly clients: ClientFactory,
  ) {}

  hello(name: string): Promise<{ message: string; address: string }> {
    return firstValueFrom(this.client.getService<Greeter>('Greeter').sayHello({ name }));
  }
}

/** The app as it ships: real etcd discovery, which the test never reaches. Nest overrides a dynamic module by identity: keep it in a constant. */
const DISCOVERY = EtcdDiscoveryModule.forRoot({ isGlobal: true, etcd: { hosts: ['http://127.0.0.1:1'] } });

@Module({
  imports: [
    DISCOVERY,
    EtcdDiscoveryModule.forFeature([{ serviceName: 'greeter', options: GREETER_CLIENT }]),
  ],
  providers: [HelloService],
})
class AppModule {}

describe('nestjs-etcd-discovery/testing', () => {
  let servers: GreeterServer[];

  beforeAll(async () => {
    servers = await Promise.all([GreeterServer.start(), GreeterServer.start()]);
  });
  afterAll(() => {
    for (const server of servers) server.forceShutdown();
  });

  it('overrides EtcdDiscoveryModule: injected clients call local servers, and set() changes membership live', async () => {
    const [first, second] = servers;
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideModule(DISCOVERY)
      .useModule(EtcdDiscoveryTestingModule.forRoot({ instances: { greeter: [`127.0.0.1:${first.port}`] } }))
      .compile();
    const app = moduleRef.createNestApplication();
    await app.init();
    try {
      const hello = app.get(HelloService);
      expect(await hello.hello('test')).toMatchObject({ message: 'hello test', address: String(first.port) });

      app.get(StaticInstanceSource).set('greeter', [{ address: `127.0.0.1:${second.port}`, metadata: { zone: 'b' } }]);
      await expect.poll(async () => (await hello.hello('moved')).address, { timeout: 5_000 }).toBe(String(second.port));
      const instances = await firstValueFrom(hello.clients.instances('greeter'));
      expect(instances).toEqual([
        { id: 'static-0', key: '/services/greeter/static-0', address: `127.0.0.1:${second.port}`, host: '127.0.0.1', port: second.port, metadata: { zone: 'b' } },
      ]);

      // A service with no instance fails fast, naming it, as with etcd.
      app.get(StaticInstanceSource).set('greeter', []);
      const outcome = (): Promise<string> => hello.hello('none').then(() => 'served', (error: { code?: number; details?: string }) => `${error.code} ${error.details}`);
      await expect.poll(outcome, { timeout: 5_000 }).toMatch(/^14 .*no live instance of service "greeter"/);
    } finally {
      await app.close();
    }
  });

  it('refuses what an etcd record could not hold', () => {
    const source = new StaticInstanceSource();
    expect(() => source.set('greeter', ['not-an-address'])).toThrow(/"not-an-address" is not host:port/);
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(() => source.set('greeter', [{ address: '127.0.0.1:1', metadata: { deep } }])).toThrow(/nested deeper than 8 levels/);
  });
});

// The Nest module as an app uses it: forRoot / forRootAsync (useFactory, useClass, useExisting),
// forFeature with @InjectDiscoveredClient, startup validation, and a serving app's app.close().
import { Injectable, Module, type INestApplicationContext, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ClientGrpc } from '@nestjs/microservices';
import { firstValueFrom, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import { InjectDiscoveredClient } from '../../libs/etcd-discovery/src/client/inject-discovered-client.decorator.js';
import type {
  EtcdDiscoveryModuleOptions,
  EtcdDiscoveryOptionsFactory,
} from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import { InvalidDiscoveryOptionsError } from '../../libs/etcd-discovery/src/options/invalid-options.error.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { withEtcdDiscovery } from '../../libs/etcd-discovery/src/server/with-etcd-discovery.js';
import { recordLogs, uniqueNamespace } from '../support/etcd.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const GREETER_CLIENT = { package: 'greeter', protoPath: GREETER_PROTO_PATH };

interface GreeterService {
  sayHello(request: { name: string }): Observable<{ message: string; instanceId: string }>;
}

recordLogs();
const fx = useEtcd();

function baseOptions(namespace: string): EtcdDiscoveryModuleOptions {
  return { etcd: { hosts: [fx.etcd.endpoint] }, namespace, server: { ttlSeconds: 2, drainDelayMs: 200 } };
}

async function keysUnder(prefix: string): Promise<string[]> {
  return fx.outsider.getAll().prefix(prefix).keys();
}

/** A serving app: a Nest microservice with the greeter controller, registered through the module. */
async function startGreeter(namespace: string): Promise<INestMicroservice> {
  const { Controller } = await import('@nestjs/common');
  const { GrpcMethod } = await import('@nestjs/microservices');

  @Controller()
  class GreeterController {
    constructor(private readonly registration: EtcdRegistration) {}

    @GrpcMethod('Greeter', 'SayHello')
    sayHello({ name }: { name: string }): { message: string; instanceId: string } {
      return { message: `Hello, ${name}!`, instanceId: this.registration.instanceId };
    }
  }

  @Module({
    imports: [EtcdDiscoveryModule.forRoot({ ...baseOptions(namespace), registration: { serviceName: 'greeter' } })],
    controllers: [GreeterController],
  })
  class GreeterModule {}

  const app = await NestFactory.createMicroservice(
    GreeterModule,
    withEtcdDiscovery({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: '127.0.0.1:0' }),
  );
  await app.listen();
  await app.get(EtcdRegistration).whenRegistered();
  return app;
}

describe('EtcdDiscoveryModule in a Nest app (real etcd)', () => {
  it('forRoot: a serving app registers, a calling app reaches it, app.close() deregisters at once', async () => {
    const namespace = uniqueNamespace('module-root');
    const server = await startGreeter(namespace);
    let client: INestApplicationContext | undefined;
    try {
      expect(await keysUnder(`${namespace}/greeter/`)).toHaveLength(1);

      client = await NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot(baseOptions(namespace)), { logger: false });
      const greeter = await firstValueFrom(client.get(ClientFactory).getService<GreeterService>('greeter', 'Greeter', GREETER_CLIENT));
      const reply = await firstValueFrom(greeter.sayHello({ name: 'module' }));
      expect(reply).toEqual({ message: 'Hello, module!', instanceId: server.get(EtcdRegistration).instanceId });

      const closing = Date.now();
      await server.close();
      // Deregistration is the first step of close, long before the 2 s lease could expire.
      expect(await keysUnder(`${namespace}/greeter/`)).toEqual([]);
      expect(Date.now() - closing).toBeLessThan(1_900);
    } finally {
      await client?.close();
      await server.close().catch(() => undefined);
    }
  });

  it('forRootAsync: useFactory with inject, useClass and useExisting all resolve the options', async () => {
    const namespace = uniqueNamespace('module-async');
    await fx.outsider.put(`${namespace}/svc/one`).value(JSON.stringify({ Addr: '127.0.0.1:1', Metadata: {} }));

    const SETTINGS = Symbol('SETTINGS');
    @Module({ providers: [{ provide: SETTINGS, useValue: baseOptions(namespace) }], exports: [SETTINGS] })
    class SettingsModule {}

    @Injectable()
    class OptionsFactory implements EtcdDiscoveryOptionsFactory {
      createEtcdDiscoveryOptions(): EtcdDiscoveryModuleOptions {
        return baseOptions(namespace);
      }
    }

    @Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
    class FactoryModule {}

    const variants = [
      EtcdDiscoveryModule.forRootAsync({
        imports: [SettingsModule],
        inject: [SETTINGS],
        useFactory: async (settings: EtcdDiscoveryModuleOptions) => settings,
      }),
      EtcdDiscoveryModule.forRootAsync({ useClass: OptionsFactory }),
      EtcdDiscoveryModule.forRootAsync({ imports: [FactoryModule], useExisting: OptionsFactory }),
    ];
    for (const variant of variants) {
      const app = await NestFactory.createApplicationContext(variant, { logger: false });
      try {
        const instances = await firstValueFrom(app.get(ClientFactory).instances('svc'));
        expect(instances.map((instance) => instance.address)).toEqual(['127.0.0.1:1']);
      } finally {
        await app.close();
      }
    }
  });

  it('fails at startup with InvalidDiscoveryOptionsError naming the field, for forRoot and forRootAsync', async () => {
    expect.assertions(4);
    const bad = { etcd: { hosts: ['127.0.0.1:2379'] } };
    for (const module of [
      EtcdDiscoveryModule.forRoot(bad),
      EtcdDiscoveryModule.forRootAsync({ useFactory: () => bad }),
    ]) {
      const error = await NestFactory.createApplicationContext(module, { logger: false, abortOnError: false }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
      expect((error as InvalidDiscoveryOptionsError).field).toBe('etcd.hosts[0]');
    }
  });

  it('forFeature + @InjectDiscoveredClient: a provider gets the balanced client by service name', async () => {
    const namespace = uniqueNamespace('module-feature');
    const server = await startGreeter(namespace);

    @Injectable()
    class HelloService {
      constructor(@InjectDiscoveredClient('greeter') readonly client: ClientGrpc) {}
    }

    @Module({
      imports: [
        EtcdDiscoveryModule.forRoot({ ...baseOptions(namespace), isGlobal: true }),
        EtcdDiscoveryModule.forFeature([{ serviceName: 'greeter', options: GREETER_CLIENT }]),
      ],
      providers: [HelloService],
    })
    class CallerModule {}

    const app = await NestFactory.createApplicationContext(CallerModule, { logger: false });
    try {
      const { client } = app.get(HelloService);
      // The same long-lived proxy ClientFactory hands out for these options.
      expect(client).toBe(app.get(ClientFactory).createClient('greeter', GREETER_CLIENT));
      const greeter = client.getService<GreeterService>('Greeter');
      const reply = await waitFor(() => firstValueFrom(greeter.sayHello({ name: 'feature' })).catch(() => undefined), 5_000);
      expect(reply.message).toBe('Hello, feature!');
    } finally {
      await app.close();
      await server.close();
    }
  });

  it('withEtcdDiscovery without a registration option fails startup with a message naming the fix', async () => {
    const namespace = uniqueNamespace('module-noreg');
    @Module({ imports: [EtcdDiscoveryModule.forRoot(baseOptions(namespace))] })
    class NoRegistrationModule {}

    const app = await NestFactory.createMicroservice(
      NoRegistrationModule,
      { ...withEtcdDiscovery({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: '127.0.0.1:0' }), logger: false },
    );
    try {
      await expect(app.listen()).rejects.toThrow(/no "registration" option; add registration: \{ serviceName/);
    } finally {
      await app.close();
    }
  });
});


describe('clients made before etcd was ever listed', () => {
  it('@InjectDiscoveredClient calls fail at once with UNAVAILABLE naming etcd and the reason, then work once etcd is there', async () => {
    const namespace = uniqueNamespace('module-unlisted');
    const server = await startGreeter(namespace);
    // etcd is cut off for this client from its start: every connection through the proxy is dropped.
    const proxy = await startFaultProxy(fx.etcd.endpoint);
    await proxy.cut();

    @Injectable()
    class HelloService {
      constructor(@InjectDiscoveredClient('greeter') readonly client: ClientGrpc) {}
    }

    @Module({
      imports: [
        EtcdDiscoveryModule.forRoot({ ...baseOptions(namespace), etcd: { hosts: [proxy.endpoint] }, isGlobal: true }),
        EtcdDiscoveryModule.forFeature([{ serviceName: 'greeter', options: GREETER_CLIENT }]),
      ],
      providers: [HelloService],
    })
    class CallerModule {}

    const app = await NestFactory.createApplicationContext(CallerModule, { logger: false });
    try {
      const greeter = app.get(HelloService).client.getService<GreeterService>('Greeter');
      const { Metadata } = await import('@grpc/grpc-js');
      const call = async (): Promise<{ ms: number; error?: { code?: number; details?: string } }> => {
        const started = performance.now();
        try {
          await firstValueFrom((greeter.sayHello as (r: object, m: object, o: object) => Observable<unknown>)({ name: 'x' }, new Metadata(), { deadline: Date.now() + 10_000 }));
          return { ms: performance.now() - started };
        } catch (error) {
          return { ms: performance.now() - started, error: error as { code?: number; details?: string } };
        }
      };
      const outcomes = [];
      for (let i = 0; i < 5; i++) outcomes.push(await call());
      // The very first call may wait for the first list attempt (refused connections fail within about a second).
      for (const outcome of outcomes) {
        expect(outcome.error?.code).toBe(14);
        expect(outcome.error?.details).toMatch(/cannot be listed from etcd under ".*\/greeter\/": etcd unreachable: /);
      }
      for (const outcome of outcomes.slice(1)) expect(outcome.ms).toBeLessThan(1_000);
      expect(outcomes[0].ms).toBeLessThan(5_000);

      await proxy.pass();
      const reply = await waitFor(async () => ((await call()).error ? undefined : true), 10_000, { what: 'a call succeeding once etcd is reachable' });
      expect(reply).toBe(true);
    } finally {
      await app.close();
      await proxy.close();
      await server.close();
    }
  });
});

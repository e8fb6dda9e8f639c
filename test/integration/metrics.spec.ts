// The library's OpenTelemetry metrics as an app with an SDK reads them: a registered serving app, two more
// greeter servers put in etcd by hand, and a calling app with p2c_ewma, against real etcd and real grpc-js.
import { Controller, Module, type INestApplicationContext, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import type { EtcdDiscoveryModuleOptions } from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { withEtcdDiscovery } from '../../libs/etcd-discovery/src/server/with-etcd-discovery.js';
import { ATTRIBUTES, INSTRUMENTS } from '../../libs/etcd-discovery/src/telemetry/instruments.js';
import { recordLogs, uniqueNamespace } from '../support/etcd.js';
import { callOnce, GREETER_PROTO_PATH, GreeterServer, type CallOutcome, type GreeterClient } from '../support/grpc-servers.js';
import { registerMeterProvider, type CollectedMetrics } from '../support/metrics.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const { callsWithoutInstance, instanceCount, leaseGrants, leaseLosses, membershipChanges, p2cEjections, picks, registrationStatus } = INSTRUMENTS;
const GREETER = { [ATTRIBUTES.service]: 'greeter' };

recordLogs();
const fx = useEtcd();

function baseOptions(namespace: string): EtcdDiscoveryModuleOptions {
  return { etcd: { hosts: [fx.etcd.endpoint] }, namespace, server: { ttlSeconds: 5, drainDelayMs: 0 } };
}

/** A serving app registered through the module; it answers with its port, as GreeterServer does. */
async function startRegisteredGreeter(namespace: string): Promise<INestMicroservice> {
  @Controller()
  class GreeterController {
    constructor(private readonly registration: EtcdRegistration) {}

    @GrpcMethod('Greeter', 'SayHello')
    sayHello({ name }: { name: string }): { message: string; instanceId: string; address: string } {
      return { message: `hello ${name}`, instanceId: this.registration.instanceId, address: this.registration.instances[0]?.address.split(':')[1] ?? '' };
    }
  }

  @Module({ imports: [EtcdDiscoveryModule.forRoot({ ...baseOptions(namespace), registration: { serviceName: 'greeter' } })], controllers: [GreeterController] })
  class GreeterModule {}

  const app = await NestFactory.createMicroservice(GreeterModule, {
    ...withEtcdDiscovery({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: '127.0.0.1:0' }),
    logger: false,
  });
  await app.listen();
  await app.get(EtcdRegistration).whenRegistered();
  return app;
}

async function sumOf(metrics: CollectedMetrics, name: string): Promise<number> {
  return (await metrics.points(name)).reduce((sum, point) => sum + point.value, 0);
}

describe('metrics through @opentelemetry/api (real etcd, real grpc-js servers)', () => {
  it('count live instances, joins and leaves, the lease, the registration state, picks, ejections and calls without an instance', async () => {
    const metrics = registerMeterProvider();
    fx.cleanup.add(() => metrics.close());
    const namespace = uniqueNamespace('metrics');

    const server = await startRegisteredGreeter(namespace);
    fx.cleanup.add(() => server.close());
    expect(await metrics.value(leaseGrants.name)).toBe(1);
    expect(await metrics.value(leaseLosses.name)).toBe(0);
    expect(await metrics.value(registrationStatus.name, { [ATTRIBUTES.registrationState]: 'registered' })).toBe(1);
    expect(await metrics.value(registrationStatus.name, { [ATTRIBUTES.registrationState]: 'registering' })).toBe(0);

    const servers = [await GreeterServer.start(), await GreeterServer.start(), await GreeterServer.start()];
    fx.cleanup.add(() => servers.forEach((one) => one.forceShutdown()));
    const keyOf = (one: GreeterServer): string => `${namespace}/greeter/i${one.port}`;
    const put = (one: GreeterServer) => fx.outsider.put(keyOf(one)).value(JSON.stringify({ Addr: `127.0.0.1:${one.port}`, Metadata: {} }));
    await put(servers[0]);
    await put(servers[1]);

    const client: INestApplicationContext = await NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot(baseOptions(namespace)), { logger: false });
    fx.cleanup.add(() => client.close());
    const factory = client.get(ClientFactory);
    const greeter = factory.createClient('greeter', { package: 'greeter', protoPath: GREETER_PROTO_PATH, loadBalancing: 'p2c_ewma' }).getService<GreeterClient>('Greeter');

    // The first listing (3 live) is where the count starts, not a change.
    const outcomes: CallOutcome[] = [await callOnce(greeter)];
    expect(await metrics.value(instanceCount.name, GREETER)).toBe(3);
    expect(await metrics.points(membershipChanges.name)).toEqual([]);

    await put(servers[2]);
    await waitFor(async () => (await metrics.value(instanceCount.name, GREETER)) === 4, 5_000, { what: 'instance.count 4' });
    await fx.outsider.delete().key(keyOf(servers[2]));
    await waitFor(async () => (await metrics.value(instanceCount.name, GREETER)) === 3, 5_000, { what: 'instance.count 3' });
    const changes = (change: string): Promise<number> => metrics.value(membershipChanges.name, { ...GREETER, [ATTRIBUTES.change]: change });
    expect({ joined: await changes('joined'), left: await changes('left'), changed: await changes('changed') }).toEqual({ joined: 1, left: 1, changed: 0 });

    for (let i = 0; i < 59; i++) outcomes.push(await callOnce(greeter));
    expect(outcomes.filter((outcome) => !outcome.ok)).toEqual([]);
    const picked = await metrics.points(picks.name);
    const registeredPort = Number(server.get(EtcdRegistration).instances[0].address.split(':')[1]);
    console.log(`[metrics] picks of ${outcomes.length} calls: ${picked.map((point) => `${point.attributes[ATTRIBUTES.serverPort]}=${point.value}`).join(' ')}`);
    expect(picked.reduce((sum, point) => sum + point.value, 0)).toBe(outcomes.length);
    expect(new Set(picked.map((point) => point.attributes[ATTRIBUTES.serverPort]))).toEqual(new Set([registeredPort, servers[0].port, servers[1].port]));
    for (const point of picked) expect(point.attributes).toMatchObject({ ...GREETER, [ATTRIBUTES.serverAddress]: '127.0.0.1' });

    // An endpoint answering UNAVAILABLE is ejected once, however many calls p2c sent it before it was.
    servers[1].behaviour = { delayMs: 0, code: Status.UNAVAILABLE };
    await waitFor(async () => (await callOnce(greeter)).ok === false, 5_000, { intervalMs: 1, what: 'a call to the failing server' });
    expect(await metrics.points(p2cEjections.name)).toEqual([
      { attributes: { ...GREETER, [ATTRIBUTES.serverAddress]: '127.0.0.1', [ATTRIBUTES.serverPort]: servers[1].port }, value: 1 },
    ]);

    // Whatever the policy (grpc-js's round_robin, the default, and ours), and once per call when retried (grpc-js
    // marks the final status of a retried call with grpc-previous-rpc-attempts).
    const nobody = (loadBalancing: 'round_robin' | 'p2c_ewma', retry?: { maxAttempts: number }): GreeterClient =>
      factory.createClient('nobody', { package: 'greeter', protoPath: GREETER_PROTO_PATH, loadBalancing, retry }).getService<GreeterClient>('Greeter');
    const failures = [
      await callOnce(nobody('round_robin')),
      await callOnce(nobody('p2c_ewma')),
      await callOnce(nobody('round_robin', { maxAttempts: 3 })),
      await callOnce(nobody('round_robin')),
    ];
    console.log(`[metrics] calls to a service without instances: ${failures.map((failure) => JSON.stringify(!failure.ok && failure.details)).join(', ')}`);
    expect(failures.map((outcome) => !outcome.ok && outcome.code)).toEqual([Status.UNAVAILABLE, Status.UNAVAILABLE, Status.UNAVAILABLE, Status.UNAVAILABLE]);
    expect(await metrics.value(callsWithoutInstance.name, { [ATTRIBUTES.service]: 'nobody' })).toBe(4);
    expect(await sumOf(metrics, callsWithoutInstance.name)).toBe(4);
    expect(await metrics.value(instanceCount.name, { [ATTRIBUTES.service]: 'nobody' })).toBe(0);

    // A live instance relaying its own "no live instance" (a service that calls another through this library)
    // is a server's answer, not a call of ours without an instance: as a Trailers-Only response, after response
    // headers, and retried.
    const text = `14 UNAVAILABLE: nestjs-etcd-discovery: no live instance of service "deeper" is registered in etcd under "${namespace}/deeper/"`;
    const relays = [
      await GreeterServer.start({ code: Status.UNAVAILABLE, details: text }),
      await GreeterServer.start({ code: Status.UNAVAILABLE, details: text, headersFirst: true }),
    ];
    fx.cleanup.add(() => relays.forEach((relay) => relay.forceShutdown()));
    for (const [k, relay] of relays.entries()) {
      const service = `relay-${k}`;
      await fx.outsider.put(`${namespace}/${service}/i${relay.port}`).value(JSON.stringify({ Addr: `127.0.0.1:${relay.port}`, Metadata: {} }));
      const client = (retry?: { maxAttempts: number }): GreeterClient =>
        factory.createClient(service, { package: 'greeter', protoPath: GREETER_PROTO_PATH, retry }).getService<GreeterClient>('Greeter');
      expect(await callOnce(client())).toMatchObject({ ok: false, code: Status.UNAVAILABLE, details: text });
      expect(await callOnce(client({ maxAttempts: 3 }))).toMatchObject({ ok: false, code: Status.UNAVAILABLE, details: text });
      // The Trailers-Only answer was retried (1 + 3 attempts); response headers commit a call, never retried.
      expect(relay.answered).toBe(relay.behaviour.headersFirst ? 2 : 4);
      expect(await metrics.value(callsWithoutInstance.name, { [ATTRIBUTES.service]: service })).toBe(0);
    }
    expect(await sumOf(metrics, callsWithoutInstance.name)).toBe(4);

    await server.close();
    expect(await metrics.value(registrationStatus.name, { [ATTRIBUTES.registrationState]: 'deregistered' })).toBe(1);
    expect(await metrics.value(registrationStatus.name, { [ATTRIBUTES.registrationState]: 'registered' })).toBe(0);
  });
});

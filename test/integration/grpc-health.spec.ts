// grpc.health.v1.Health on the server withEtcdDiscovery() makes: its status follows the registration (real etcd,
// a real Nest microservice, a grpc-js health client), it can be turned off, and it steps aside for an app's own.
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import * as grpc from '@grpc/grpc-js';
import { protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import { describe, expect, it } from 'vitest';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import type { EtcdDiscoveryModuleOptions } from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { GrpcHealth } from '../../libs/etcd-discovery/src/server/grpc-health.js';
import { withEtcdDiscovery } from '../../libs/etcd-discovery/src/server/with-etcd-discovery.js';
import { readKey, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { GREETER_PROTO_PATH, helloDirect } from '../support/greeter-proto.js';
import { HealthClient, type HealthStatus } from '../support/health-client.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const logs = recordLogs();
const fx = useEtcd();
const GRPC_OPTIONS = { package: 'greeter', protoPath: GREETER_PROTO_PATH, url: '127.0.0.1:0' };

@Controller()
class GreeterController {
  @GrpcMethod('Greeter', 'SayHello')
  sayHello({ name }: { name: string }): { message: string } {
    return { message: `Hello, ${name}!` };
  }
}

/** A Nest gRPC microservice registered through the module; closed after the test. */
async function startApp(
  options: EtcdDiscoveryModuleOptions,
  grpcOptions: Record<string, unknown> = GRPC_OPTIONS,
  controllers: unknown[] = [GreeterController],
): Promise<{ app: INestMicroservice; address: string; registration: EtcdRegistration }> {
  @Module({
    imports: [EtcdDiscoveryModule.forRoot({ registration: { serviceName: 'greeter' }, ...options })],
    controllers: controllers as never[],
  })
  class AppModule {}
  const app = await NestFactory.createMicroservice(AppModule, withEtcdDiscovery(grpcOptions as typeof GRPC_OPTIONS));
  // Idempotent: a test may have closed it already.
  fx.cleanup.add(() => app.close().catch(() => undefined));
  await app.listen();
  const registration = app.get(EtcdRegistration);
  // The records exist from the server's start, registered or not.
  return { app, address: registration.instances[0].address, registration };
}

function healthClient(address: string): HealthClient {
  const client = new HealthClient(address);
  fx.cleanup.add(() => client.close());
  return client;
}

const serverOptions = { ttlSeconds: 2, drainDelayMs: 300, shutdownTimeoutMs: 5_000 };

describe('grpc.health.v1.Health on the discoverable server (real etcd)', () => {
  it('NOT_SERVING while registering or lost, SERVING for "" and greeter.Greeter once registered, NOT_SERVING from close() on', async () => {
    const namespace = uniqueNamespace('health');
    // etcd is unreachable at startup: the app serves, but is not registered yet.
    const proxy = await startFaultProxy(fx.etcd.endpoint);
    fx.cleanup.add(() => proxy.close());
    await proxy.cut();
    const { app, address, registration } = await startApp({ etcd: { hosts: [proxy.endpoint], requestTimeoutMs: 1_000 }, namespace, server: serverOptions });
    const health = healthClient(address);
    const overall = health.watch('');
    const greeter = health.watch('greeter.Greeter');

    expect(registration.state).toBe('registering');
    expect(await health.check('')).toBe('NOT_SERVING');
    expect(await health.check('greeter.Greeter')).toBe('NOT_SERVING');
    expect((await helloDirect(address)).message).toBe('Hello, direct!');
    await expect(health.check('greeter.Nope')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

    await proxy.pass();
    await registration.whenRegistered();
    expect(await health.check('')).toBe('SERVING');
    expect(await health.check('greeter.Greeter')).toBe('SERVING');

    // Lost: an outsider revokes the lease; the registrar puts the record back on a new one.
    const lostFrom = greeter.seen.length;
    await fx.outsider.leaseClient.leaseRevoke({ ID: registration.leaseId! });
    await waitFor(() => registration.state === 'registered' && registration.leasesGranted === 2, 5_000, { what: 're-registered on a new lease' });
    await waitFor(() => greeter.statuses().slice(lostFrom).join() === 'NOT_SERVING,SERVING', 2_000, { what: 'the Watch to see NOT_SERVING, then SERVING' });

    const closing = performance.now();
    await app.close();
    const closeMs = performance.now() - closing;

    const expected: HealthStatus[] = ['NOT_SERVING', 'SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING'];
    expect(overall.statuses()).toEqual(expected);
    expect(greeter.statuses()).toEqual(expected);
    // Shutdown ends the Watch streams (OK: clients retry elsewhere) instead of waiting 5 s for them.
    expect(await overall.ended).toMatchObject({ code: grpc.status.OK });
    expect(await greeter.ended).toMatchObject({ code: grpc.status.OK });
    expect(logs.count('in-flight calls cancelled')).toBe(0);
    expect(closeMs).toBeLessThan(serverOptions.shutdownTimeoutMs);
  });

  it('server.healthService: false serves no health service (UNIMPLEMENTED), the app still serves', async () => {
    const { address, registration } = await startApp({ etcd: { hosts: [fx.etcd.endpoint] }, namespace: uniqueNamespace('no-health'), server: { ...serverOptions, healthService: false } });
    await registration.whenRegistered();
    await expect(healthClient(address).check('')).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    expect((await helloDirect(address)).message).toBe('Hello, direct!');
    expect(await readKey(fx.outsider, registration.instances[0].key)).toBeDefined();
  });

  it("an app serving its own grpc.health.v1.Health keeps it: ours is skipped with one warning, nothing crashes", async () => {
    @Controller()
    class OwnHealthController {
      @GrpcMethod('Health', 'Check')
      check(): { status: string } {
        return { status: 'NOT_SERVING' };
      }
    }
    const mark = logs.lines.length;
    const { address, registration } = await startApp(
      { etcd: { hosts: [fx.etcd.endpoint] }, namespace: uniqueNamespace('own-health'), server: serverOptions },
      { ...GRPC_OPTIONS, package: ['greeter', 'grpc.health.v1'], protoPath: [GREETER_PROTO_PATH, HEALTH_PROTO_PATH] },
      [GreeterController, OwnHealthController],
    );
    await registration.whenRegistered();

    // Ours would say SERVING now, and would implement Watch.
    const health = healthClient(address);
    expect(await health.check('')).toBe('NOT_SERVING');
    const watch = health.watch('');
    expect(await watch.ended).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    const warnings = logs.lines.slice(mark).filter((line) => line.message.includes('grpc.health.v1.Health'));
    expect(warnings).toEqual([
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/serves its own grpc\.health\.v1\.Health; not adding/) }),
    ]);
  });

  it('answers names it does not serve itself: nothing is kept per name (a watched megabyte name stayed in memory for good)', async () => {
    const server = new grpc.Server();
    fx.cleanup.add(() => server.forceShutdown());
    const health = new GrpcHealth(['greeter.Greeter']);
    health.addTo(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const client = healthClient(`127.0.0.1:${port}`);
    const upstream = (health as unknown as { health: { watchers: Map<string, unknown> } }).health;

    const huge = 'x'.repeat(1_000_000);
    const long = client.watch(huge);
    const short = client.watch('no.such.Service');
    const known = client.watch('greeter.Greeter');
    await waitFor(() => long.seen.length + short.seen.length + known.seen.length === 3, 3_000, { what: 'three first answers' });
    expect(long.statuses()).toEqual(['SERVICE_UNKNOWN']);
    // A name no service can have: answered, then ended; a plausible one stays open, as the protocol says.
    expect((await long.ended).code).toBe(grpc.status.OK);
    expect(short.statuses()).toEqual(['SERVICE_UNKNOWN']);
    expect(known.statuses()).toEqual(['NOT_SERVING']);
    await expect(client.check(huge)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringMatching(/^Health status unknown for service x+\.\.\.\(1000000 chars\)$/) });
    // Only served names reach grpc-health-check, which keeps an entry per name ever watched.
    expect([...upstream.watchers.keys()]).toEqual(['greeter.Greeter']);
  });

  it('grpc-js refuses a second grpc.health.v1.Health on one server (why ours is added after the app\'s services)', () => {
    const server = new grpc.Server();
    new GrpcHealth(['greeter.Greeter']).addTo(server);
    expect(() => new GrpcHealth([]).addTo(server)).toThrow(/Method handler for \/grpc\.health\.v1\.Health\/Check already provided/);
    server.forceShutdown();
  });
});

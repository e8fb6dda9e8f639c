// EtcdDiscoveryHealthIndicator behind a real terminus HealthCheckService in a hybrid (HTTP + gRPC) Nest app,
// against real etcd: up with details, 503 once etcd has been unreachable past the threshold, up again once
// etcd is back, 503 while the registration is kept out of etcd, up while paused, down from the start of shutdown.
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import { EtcdDiscoveryHealthIndicator } from '../../libs/etcd-discovery/src/health/etcd-discovery.health-indicator.js';
import type { EtcdDiscoveryHealthDetails, EtcdDiscoveryHealthThresholds } from '../../libs/etcd-discovery/src/index.js';
import { EtcdDiscoveryModule } from '../../libs/etcd-discovery/src/module/etcd-discovery.module.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { withEtcdDiscovery } from '../../libs/etcd-discovery/src/server/with-etcd-discovery.js';
import { readKey, record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const TTL_SECONDS = 2;
/** Well under the defaults (1.5 x TTL = 3 s), so the tests also show the thresholds argument is honoured. */
const THRESHOLDS: EtcdDiscoveryHealthThresholds = { etcdUnreachableMs: 1_000, registrationAbsentMs: 1_000 };

recordLogs();
const fx = useEtcd();

interface HealthAnswer {
  readonly status: number;
  readonly body: HealthCheckResult;
  /** The indicator's details, wherever terminus filed them (info when up, error when down). */
  readonly discovery: EtcdDiscoveryHealthDetails;
}

interface HealthApp {
  readonly app: INestApplication;
  readonly namespace: string;
  readonly key: string;
  health(): Promise<HealthAnswer>;
}

/** The app a user writes: greeter over gRPC, registered through the module, and GET /health through terminus. */
async function startApp(): Promise<HealthApp> {
  @Controller()
  class GreeterController {
    @GrpcMethod('Greeter', 'SayHello')
    sayHello({ name }: { name: string }): { message: string; instanceId: string } {
      return { message: `Hello, ${name}!`, instanceId: '' };
    }
  }

  @Controller('health')
  class HealthController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly discovery: EtcdDiscoveryHealthIndicator,
    ) {}

    @Get()
    @HealthCheck()
    check(): Promise<HealthCheckResult> {
      return this.health.check([() => this.discovery.isHealthy('discovery', THRESHOLDS)]);
    }
  }

  const namespace = uniqueNamespace('health');
  @Module({
    imports: [
      TerminusModule.forRoot({ logger: false }),
      EtcdDiscoveryModule.forRoot({
        etcd: { hosts: [fx.etcd.endpoint], requestTimeoutMs: 1_000 },
        namespace,
        registration: { serviceName: 'greeter' },
        server: { ttlSeconds: TTL_SECONDS, drainDelayMs: 0 },
      }),
    ],
    controllers: [GreeterController, HealthController],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, { logger: false });
  fx.cleanup.add(() => app.close());
  app.connectMicroservice(withEtcdDiscovery({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: '127.0.0.1:0' }));
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const registration = app.get(EtcdRegistration);
  await registration.whenRegistered();
  // The app calls its own service, so it follows it.
  const following = app.get(ClientFactory).instances('greeter').subscribe();
  fx.cleanup.add(() => following.unsubscribe());
  const url = `${await app.getUrl()}/health`;
  return {
    app,
    namespace,
    key: `${namespace}/greeter/${registration.instanceId}`,
    async health() {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      const body = (await response.json()) as HealthCheckResult;
      const discovery = (body.info?.discovery ?? body.error?.discovery) as EtcdDiscoveryHealthDetails;
      return { status: response.status, body, discovery };
    },
  };
}

describe('EtcdDiscoveryHealthIndicator with terminus (real etcd)', () => {
  it('is up with details, 503 once etcd is unreachable past the threshold (with the last error), up once etcd is back', async () => {
    const { health, key } = await startApp();

    const healthy = await waitFor(async () => {
      const answer = await health();
      return answer.status === 200 && answer.discovery.services.greeter?.watching ? answer : undefined;
    }, 5_000, { what: 'an up answer with the followed service watched' });
    expect(healthy.body.status).toBe('ok');
    const up = healthy.discovery;
    expect(up.status).toBe('up');
    expect(up.message).toBeUndefined();
    expect(up.etcd).toMatchObject({ reachable: true, lastError: null, unreachableForMs: null });
    expect(Date.parse(up.etcd.lastSuccessAt!)).toBeGreaterThan(Date.now() - 5_000);
    const held = await readKey(fx.outsider, key);
    expect(up.registration).toMatchObject({ state: 'registered', services: ['greeter'], leaseId: held!.lease, absentForMs: null });
    // Keepalives go every TTL / 3; one TTL without an answer would mean the lease is in danger.
    expect(up.registration!.keepaliveAgeMs).toBeLessThan(TTL_SECONDS * 1_000);
    expect(up.services.greeter).toMatchObject({ instances: 1, watching: true, error: null });
    expect(up.services.greeter.syncedAt).not.toBeNull();

    const stoppedAt = Date.now();
    fx.cleanup.add(async () => {
      if (fx.etcd.pid === undefined) await fx.etcd.restart();
    });
    await fx.etcd.stop();
    const down = await waitFor(async () => {
      const answer = await health();
      return answer.status === 503 ? answer : undefined;
    }, 10_000, { what: 'a 503 while etcd is down' });
    expect(down.body.status).toBe('error');
    expect(down.body.error?.discovery?.status).toBe('down');
    const failing = down.discovery;
    expect(failing.message).toMatch(/^etcd unreachable for \d+ ms \(last error: .+\)/);
    expect(failing.etcd.reachable).toBe(false);
    expect(failing.etcd.unreachableForMs).toBeGreaterThanOrEqual(THRESHOLDS.etcdUnreachableMs!);
    expect(failing.etcd.lastError!.message).toMatch(/UNAVAILABLE|ECONNREFUSED|No connection/i);
    expect(Date.parse(failing.etcd.lastError!.at)).toBeGreaterThanOrEqual(stoppedAt);
    // The last success came before the outage, and is still reported.
    expect(Date.parse(failing.etcd.lastSuccessAt!)).toBeLessThanOrEqual(Date.parse(failing.etcd.lastError!.at));

    const restartingAt = Date.now();
    await fx.etcd.restart();
    const back = await waitFor(async () => {
      const answer = await health();
      return answer.status === 200 ? answer : undefined;
    }, 10_000, { what: 'an up answer once etcd is back' });
    expect(back.discovery.etcd).toMatchObject({ reachable: true, unreachableForMs: null });
    // The outage's last error stays visible after recovery, followed by an answer.
    const { lastSuccessAt, lastError } = back.discovery.etcd;
    expect(Date.parse(lastError!.at)).toBeGreaterThanOrEqual(stoppedAt);
    expect(Date.parse(lastSuccessAt!)).toBeGreaterThanOrEqual(Math.max(restartingAt, Date.parse(lastError!.at)));
  });

  it('is 503 while a foreign record keeps the registration out of etcd past the threshold, up once the key is free, up while paused, down once shutdown begins', async () => {
    const { app, health, key } = await startApp();
    await waitFor(async () => (await health()).status === 200, 5_000, { what: 'an up answer' });

    // Another process's record at our key: the registrar never overwrites it, so the registration stays lost
    // while etcd answers every request.
    await fx.outsider.put(key).value(record('10.9.9.9:1'));
    const absent = await waitFor(async () => {
      const answer = await health();
      return answer.status === 503 ? answer : undefined;
    }, 5_000, { what: 'a 503 while the key is taken' });
    expect(absent.discovery.message).toMatch(/^registration lost for \d+ ms$/);
    expect(absent.discovery.registration).toMatchObject({ state: 'lost' });
    expect(absent.discovery.registration!.absentForMs).toBeGreaterThanOrEqual(THRESHOLDS.registrationAbsentMs!);
    expect(absent.discovery.etcd).toMatchObject({ reachable: true, unreachableForMs: null });

    await fx.outsider.delete().key(key);
    const back = await waitFor(async () => {
      const answer = await health();
      return answer.status === 200 ? answer : undefined;
    }, 5_000, { what: 'an up answer once the key is free' });
    expect(back.discovery.registration).toMatchObject({ state: 'registered', absentForMs: null });

    // Paused on purpose: out of etcd, yet up (an operator's choice, not a fault).
    const indicator = app.get(EtcdDiscoveryHealthIndicator);
    const registration = app.get(EtcdRegistration);
    await registration.pause();
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    const paused = await indicator.isHealthy('discovery', { registrationAbsentMs: 0 });
    expect(paused.discovery).toMatchObject({ status: 'up', registration: { state: 'paused', absentForMs: null } });
    await registration.resume();

    // Shutdown: down at once, whatever the threshold.
    const withdrawing = registration.withdraw();
    const leaving = await indicator.isHealthy('discovery', { registrationAbsentMs: 60_000 });
    expect(leaving.discovery.status).toBe('down');
    expect(leaving.discovery.message).toMatch(/^registration deregistering: the app is shutting down$/);
    await withdrawing;
  });
});

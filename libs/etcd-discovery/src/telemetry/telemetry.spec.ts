import { readFile } from 'node:fs/promises';
import { BehaviorSubject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { registerMeterProvider, type CollectedMetrics } from '../../../../test/support/metrics.js';
import type { Interceptor } from '@grpc/grpc-js';
import { withCallCounting } from './calls-without-instance.interceptor.js';
import { ATTRIBUTES, INSTRUMENTS } from './instruments.js';
import { EndpointMetrics, followRegistration, leaseGranted, metricsEnabled, ServiceMetrics } from './telemetry.js';

const { instanceCount, leaseGrants, membershipChanges, picks, registrationStatus } = INSTRUMENTS;
const SERVICE = { [ATTRIBUTES.service]: 'greeter' };

describe('telemetry', () => {
  const opened: CollectedMetrics[] = [];
  const register = (): CollectedMetrics => {
    const metrics = registerMeterProvider();
    opened.push(metrics);
    return metrics;
  };
  afterEach(async () => {
    for (const metrics of opened.splice(0)) await metrics.close();
  });

  it('records on the MeterProvider registered last, also one registered after the first recording', async () => {
    expect(metricsEnabled()).toBe(false);
    leaseGranted();

    const first = register();
    expect(metricsEnabled()).toBe(true);
    leaseGranted();
    expect(await first.value(leaseGrants.name)).toBe(1);

    const second = register();
    leaseGranted();
    leaseGranted();
    expect(await second.value(leaseGrants.name)).toBe(2);
    expect(await first.value(leaseGrants.name)).toBe(1);
  });

  it("uses a provider the app registered through an ESM import of the API, while the library loads it with require", async () => {
    // API 1.10 maps import and require to two builds (two module instances); 1.9 to one.
    const esm = await import('@opentelemetry/api');
    const metrics = registerMeterProvider(esm.metrics);
    opened.push(metrics);
    leaseGranted();
    expect(await metrics.value(leaseGrants.name)).toBe(1);
  });

  it('reports a service once listed, its changes after the first listing, and 0 once no watcher follows it', async () => {
    const metrics = register();
    const watched = new ServiceMetrics('greeter');
    expect(await metrics.points(instanceCount.name)).toEqual([]);

    watched.listed(3, undefined);
    expect(await metrics.value(instanceCount.name, SERVICE)).toBe(3);
    expect(await metrics.points(membershipChanges.name)).toEqual([]);

    watched.listed(3, { added: ['d'], removed: ['a'], changed: ['b', 'c'] });
    const changes = (kind: string): Promise<number> => metrics.value(membershipChanges.name, { ...SERVICE, [ATTRIBUTES.change]: kind });
    expect([await changes('joined'), await changes('left'), await changes('changed')]).toEqual([1, 1, 2]);

    // A second watcher of the same service (another app in the process) is not counted twice.
    const twin = new ServiceMetrics('greeter');
    twin.listed(3, undefined);
    expect(await metrics.points(instanceCount.name)).toEqual([{ attributes: SERVICE, value: 3 }]);

    watched.stopped();
    expect(await metrics.value(instanceCount.name, SERVICE)).toBe(3);
    twin.stopped();
    expect(await metrics.value(instanceCount.name, SERVICE)).toBe(0);
  });

  it('reports the registration state as 1 and the states it left as 0, nothing while idle, deregistered once complete', async () => {
    const metrics = register();
    const states = new BehaviorSubject('idle');
    followRegistration(states);
    const status = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await metrics.points(registrationStatus.name)).map((point) => [point.attributes[ATTRIBUTES.registrationState], point.value]));

    expect(await status()).toEqual({});
    states.next('registering');
    states.next('registered');
    expect(await status()).toEqual({ registering: 0, registered: 1 });
    states.next('lost');
    expect(await status()).toEqual({ registering: 0, registered: 0, lost: 1 });
    states.next('deregistering');
    states.next('deregistered');
    states.complete();
    expect(await status()).toEqual({ registering: 0, registered: 0, lost: 0, deregistering: 0, deregistered: 1 });
  });

  it("adds its call interceptor after the client's own, as interceptors or interceptor_providers (grpc-js refuses both)", () => {
    const own: Interceptor = (options, nextCall) => nextCall(options) as ReturnType<Interceptor>;
    const provider = (): Interceptor => own;
    expect(withCallCounting('greeter', undefined)).toEqual({ interceptors: [expect.any(Function)] });
    expect(withCallCounting('greeter', { interceptors: [own] })).toEqual({ interceptors: [own, expect.any(Function)] });
    expect(withCallCounting('greeter', { interceptor_providers: [provider] })).toEqual({ interceptor_providers: [provider, expect.any(Function)] });
  });

  it("matches the README's Metrics table: every instrument, its type and unit", async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = readme.slice(readme.indexOf('\n## Metrics')).split('\n').filter((line) => line.startsWith('| `'));
    const documented = rows.map((row) => row.split('|').slice(1, 4).map((cell) => cell.trim()));
    const TYPE = { counter: 'Counter', observableUpDownCounter: 'async UpDownCounter' };
    expect(documented).toEqual(Object.values(INSTRUMENTS).map((spec) => [`\`${spec.name}\``, TYPE[spec.kind], `\`${spec.unit}\``]));
  });

  it('counts picks per endpoint with the attributes made for it', async () => {
    const metrics = register();
    const a = new EndpointMetrics('greeter', '127.0.0.1', 50051);
    const b = new EndpointMetrics('greeter', '127.0.0.1', 50052);
    for (let i = 0; i < 5; i++) a.picked();
    b.picked();
    expect(await metrics.points(picks.name)).toEqual([
      { attributes: { ...SERVICE, [ATTRIBUTES.serverAddress]: '127.0.0.1', [ATTRIBUTES.serverPort]: 50051 }, value: 5 },
      { attributes: { ...SERVICE, [ATTRIBUTES.serverAddress]: '127.0.0.1', [ATTRIBUTES.serverPort]: 50052 }, value: 1 },
    ]);
  });
});

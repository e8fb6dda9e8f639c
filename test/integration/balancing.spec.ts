// The etcd resolver and ClientFactory with real in-process gRPC servers (greeter proto) and real etcd:
// round robin spread, membership changes under load with zero failed calls, pick_first, empty lists,
// the wait timeout, and garbage records that must never get a call.
import { Metadata, Server, ServerCredentials, status as Status, type ServiceError, type handleUnaryCall } from '@grpc/grpc-js';
import { firstValueFrom, lastValueFrom, type Observable } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import type { DiscoveredClientOptions } from '../../libs/etcd-discovery/src/client/discovered-client-options.interface.js';
import { NoLiveInstanceError } from '../../libs/etcd-discovery/src/client/no-live-instance.error.js';
import { DiscoveryHub } from '../../libs/etcd-discovery/src/discovery/discovery-hub.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { discoveryOptions, record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { GREETER_PROTO_PATH, loadGreeter } from '../support/greeter-proto.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, timed, waitFor } from '../support/wait.js';

const SERVICE = 'greeter';

interface HelloRequest {
  name: string;
  delayMs?: number;
}
interface HelloReply {
  message: string;
  instanceId: string;
  address: string;
}
/** The Greeter service as Nest's ClientGrpc exposes it. */
interface GreeterClient {
  sayHello(request: HelloRequest, metadata?: Metadata, options?: { deadline?: number }): Observable<HelloReply>;
}

/** One in-process greeter server that records when each call arrived. */
interface Greeter {
  readonly name: string;
  readonly address: string;
  readonly arrivals: number[];
  readonly server: Server;
}

recordLogs();
const fx = useEtcd();
const greeters: Greeter[] = [];

async function startGreeter(name: string): Promise<Greeter> {
  const { service } = loadGreeter({ keepCase: true, defaults: true });
  const server = new Server();
  const arrivals: number[] = [];
  let address = '';
  const sayHello: handleUnaryCall<{ name: string; delay_ms: number }, object> = (call, callback) => {
    arrivals.push(Date.now());
    setTimeout(
      () => callback(null, { message: `Hello, ${call.request.name}!`, instance_id: name, address }),
      call.request.delay_ms,
    );
  };
  server.addService(service, { SayHello: sayHello, StreamHellos: (call: { end(): void }) => call.end() });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  address = `127.0.0.1:${port}`;
  const greeter = { name, address, arrivals, server };
  greeters.push(greeter);
  return greeter;
}

let g1: Greeter, g2: Greeter, g3: Greeter, g4: Greeter;

beforeAll(async () => {
  [g1, g2, g3, g4] = await Promise.all(['g1', 'g2', 'g3', 'g4'].map(startGreeter));
});

afterEach(() => {
  for (const greeter of greeters) greeter.arrivals.length = 0;
});

afterAll(() => {
  for (const greeter of greeters) greeter.server.forceShutdown();
});

/** A ClientFactory over its own hub and library etcd client, closed after the test. */
function newFactory(namespace: string): ClientFactory {
  const options = discoveryOptions(fx.etcd.endpoint, namespace);
  const client = createEtcdClient(options.etcd);
  const hub = new DiscoveryHub(client, namespace);
  const factory = new ClientFactory(hub, 10_000);
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => hub.close());
  fx.cleanup.add(() => factory.close());
  return factory;
}

function clientOptions(extra: Partial<DiscoveredClientOptions> = {}): DiscoveredClientOptions {
  return { package: 'greeter', protoPath: GREETER_PROTO_PATH, waitTimeoutMs: 3_000, ...extra };
}

async function register(namespace: string, greeter: Greeter, id = greeter.name): Promise<string> {
  const key = `${namespace}/${SERVICE}/${id}`;
  await fx.outsider.put(key).value(record(greeter.address, { name: greeter.name }));
  return key;
}

function call(client: GreeterClient, delayMs = 0, deadlineMs = 2_000): Promise<HelloReply> {
  return lastValueFrom(client.sayHello({ name: 'it', delayMs }, new Metadata(), { deadline: Date.now() + deadlineMs }));
}

/** Calls until every greeter in `expected` has served one (round robin starts on the first READY subchannel). */
async function warmUp(client: GreeterClient, expected: Greeter[]): Promise<void> {
  await waitFor(async () => {
    await call(client);
    return expected.every((greeter) => greeter.arrivals.length > 0);
  }, 3_000, { what: `calls reaching ${expected.map((greeter) => greeter.name).join(', ')}` });
  for (const greeter of greeters) greeter.arrivals.length = 0;
}

/** `concurrency` loops of calls until stopped; every failure is kept. */
function startLoad(client: GreeterClient, concurrency = 8) {
  let running = true;
  let ok = 0;
  const failures: unknown[] = [];
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        await call(client, 2);
        ok += 1;
      } catch (error) {
        failures.push(error);
        await sleep(5);
      }
    }
  });
  return {
    failures,
    get ok() {
      return ok;
    },
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

const arrivedAfter = (greeter: Greeter, time: number) => greeter.arrivals.filter((arrival) => arrival > time).length;

describe('etcd resolver + ClientFactory with real gRPC servers', () => {
  it('spreads calls round robin: each of 3 servers gets 1/3 +- 5 points of 300 calls', async () => {
    const ns = uniqueNamespace('rr');
    for (const greeter of [g1, g2, g3]) await register(ns, greeter);
    const factory = newFactory(ns);
    const client = await firstValueFrom(factory.getService<GreeterClient>(SERVICE, 'Greeter', clientOptions()));
    await warmUp(client, [g1, g2, g3]);

    for (let index = 0; index < 300; index++) await call(client);
    const counts = [g1, g2, g3].map((greeter) => greeter.arrivals.length);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(300);
    for (const count of counts) {
      expect(count).toBeGreaterThanOrEqual(85);
      expect(count).toBeLessThanOrEqual(115);
    }
    expect(g4.arrivals).toHaveLength(0);
  });

  it('follows membership under load (concurrency 8): an added server gets calls within 1 s, a removed one none after 1 s, 0 calls fail', async () => {
    const ns = uniqueNamespace('churn');
    const g1Key = await register(ns, g1);
    await register(ns, g2);
    const factory = newFactory(ns);
    const client = await firstValueFrom(factory.getService<GreeterClient>(SERVICE, 'Greeter', clientOptions()));
    await warmUp(client, [g1, g2]);
    const load = startLoad(client);
    try {
      await sleep(300);

      // Added through the library's own registration, as a serving app would.
      const options = discoveryOptions(fx.etcd.endpoint, ns, { registration: { serviceName: SERVICE }, server: { ttlSeconds: 2 } });
      const registrationClient = createEtcdClient(options.etcd);
      fx.cleanup.add(() => registrationClient.close());
      const g3Registration = new EtcdRegistration(registrationClient, options);
      fx.cleanup.add(() => g3Registration.withdraw());
      const [host, port] = g3.address.split(':');
      g3Registration.register({ address: { host, port: Number(port) }, grpcServices: ['greeter.Greeter'] });
      await g3Registration.whenRegistered();
      const addedAt = Date.now();
      await waitFor(() => g3.arrivals.length > 0, 1_000, { what: 'the added server getting calls' });
      expect(g3.arrivals[0] - addedAt).toBeLessThan(1_000);

      // Removed by an outside actor deleting its key.
      await fx.outsider.delete().key(g1Key).exec();
      const removedAt = Date.now();
      await sleep(2_000);
      expect(arrivedAfter(g1, removedAt + 1_000)).toBe(0);
      expect(arrivedAfter(g2, removedAt + 1_000)).toBeGreaterThan(0);
      expect(arrivedAfter(g3, removedAt + 1_000)).toBeGreaterThan(0);

      // Withdrawn by its registration (keys deleted, lease revoked).
      await g3Registration.withdraw();
      const withdrawnAt = Date.now();
      await sleep(1_500);
      expect(arrivedAfter(g3, withdrawnAt + 1_000)).toBe(0);
      expect(arrivedAfter(g2, withdrawnAt + 1_000)).toBeGreaterThan(0);
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(500);
  });

  it('pick_first sends every call to one server', async () => {
    const ns = uniqueNamespace('pick-first');
    for (const greeter of [g1, g2, g3]) await register(ns, greeter);
    const factory = newFactory(ns);
    const client = await firstValueFrom(
      factory.getService<GreeterClient>(SERVICE, 'Greeter', clientOptions({ loadBalancing: 'pick_first' })),
    );
    for (let index = 0; index < 100; index++) await call(client);
    const counts = [g1, g2, g3].map((greeter) => greeter.arrivals.length);
    expect(counts.sort((a, b) => b - a)).toEqual([100, 0, 0]);
  });

  it('calls servers announced by Kratos records (their grpc:// endpoint) beside our own, weighted by their string weight', async () => {
    const ns = uniqueNamespace('kratos');
    await register(ns, g1, 'ours');
    const kratos = {
      id: 'kratos-1',
      name: SERVICE,
      version: 'v1.0.0',
      metadata: { weight: '3' },
      endpoints: [`http://${g4.address}`, `grpc://${g2.address}?isSecure=false`],
    };
    await fx.outsider.put(`${ns}/${SERVICE}/kratos-1`).value(JSON.stringify(kratos));
    const factory = newFactory(ns);
    const client = await firstValueFrom(factory.getService<GreeterClient>(SERVICE, 'Greeter', clientOptions({ loadBalancing: 'metadata_weighted' })));
    await warmUp(client, [g1, g2]);
    for (let i = 0; i < 400; i++) await call(client);
    expect(g4.arrivals).toHaveLength(0);
    // Weights 1 (ours, no weight) and 3 (Kratos' "3"): smooth weighted round robin gives exactly 100 and 300.
    expect(g1.arrivals.length).toBe(100);
    expect(g2.arrivals.length).toBe(300);
  });

  it('never calls an address that only garbage records name, nor doubles a duplicated one', async () => {
    const ns = uniqueNamespace('garbage-lb');
    const prefix = `${ns}/${SERVICE}/`;
    await register(ns, g1, 'a1');
    await register(ns, g2, 'a2');
    // Every one of these names g4 (or g1 again), none validly.
    const garbage: Record<string, string> = {
      'g-metadata': JSON.stringify({ Addr: g4.address, Metadata: 'zone-a' }),
      'g-bad-json': `{"Addr":"${g4.address}",`,
      'g-go-deleted': JSON.stringify({ Op: 1, Addr: g4.address }),
      'g-huge': JSON.stringify({ Addr: g4.address, Metadata: { pad: 'x'.repeat(100_000) } }),
      'x/nested': record(g4.address),
      'z-duplicate-of-a1': record(g1.address),
    };
    for (const [suffix, value] of Object.entries(garbage)) await fx.outsider.put(`${prefix}${suffix}`).value(value);

    const factory = newFactory(ns);
    const client = await firstValueFrom(factory.getService<GreeterClient>(SERVICE, 'Greeter', clientOptions()));
    await warmUp(client, [g1, g2]);
    const load = startLoad(client);
    await sleep(1_000);
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(g4.arrivals).toHaveLength(0);
    const total = g1.arrivals.length + g2.arrivals.length;
    expect(total).toBeGreaterThan(100);
    // Two live instances, so half each (+- 10 points), however many records name g1.
    expect(g1.arrivals.length / total).toBeGreaterThan(0.4);
    expect(g1.arrivals.length / total).toBeLessThan(0.6);
  });

  it('getClient errors with NoLiveInstanceError after waitTimeoutMs when no instance is registered', async () => {
    expect.assertions(4);
    const ns = uniqueNamespace('no-instance');
    const factory = newFactory(ns);
    const startedAt = Date.now();
    try {
      await firstValueFrom(factory.getClient('nobody', clientOptions({ waitTimeoutMs: 500 })));
    } catch (error) {
      const elapsed = Date.now() - startedAt;
      expect(error).toBeInstanceOf(NoLiveInstanceError);
      expect((error as Error).message).toContain('"nobody"');
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(1_500);
    }
  });

  it('createClient calls fail fast with UNAVAILABLE naming the service while the list is empty, and succeed once an instance registers', async () => {
    const ns = uniqueNamespace('empty');
    const factory = newFactory(ns);
    const client = factory.createClient('ghost', clientOptions()).getService<GreeterClient>('Greeter');

    const failed = await timed(() => call(client, 0, 3_000).catch((error: ServiceError) => error));
    expect(failed.value).toMatchObject({ code: Status.UNAVAILABLE });
    expect((failed.value as ServiceError).details).toContain('"ghost"');
    expect(failed.ms).toBeLessThan(1_000);

    await fx.outsider.put(`${ns}/ghost/a1`).value(record(g1.address));
    const reply = await waitFor(() => call(client), 1_000, { what: 'a call succeeding once ghost has an instance' });
    expect(reply.instanceId).toBe('g1');
  });

  it('stops calling the last instance once its key is removed: calls then fail fast with UNAVAILABLE naming the service', async () => {
    const ns = uniqueNamespace('last-removed');
    const key = `${ns}/solo/a1`;
    await fx.outsider.put(key).value(record(g1.address));
    const factory = newFactory(ns);
    const client = await firstValueFrom(factory.getService<GreeterClient>('solo', 'Greeter', clientOptions()));
    expect((await call(client)).instanceId).toBe('g1');

    await fx.outsider.delete().key(key).exec();
    const removedAt = Date.now();
    await sleep(1_000);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => timed(() => call(client, 0, 1_000).then(() => 'served', (error: ServiceError) => error))),
    );
    expect(arrivedAfter(g1, removedAt + 1_000)).toBe(0);
    for (const { value, ms } of outcomes) {
      expect(value).toMatchObject({ code: Status.UNAVAILABLE });
      expect((value as ServiceError).details).toContain('"solo"');
      expect(ms).toBeLessThan(500);
    }
  });
});

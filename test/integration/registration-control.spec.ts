// Live registration control against a real etcd: the state Observable, update(metadata), pause() and resume(),
// each checked in etcd itself and, with real grpc-js servers, through a discovering client under load.
import { describe, expect, it } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import type { DiscoveredClientOptions } from '../../libs/etcd-discovery/src/client/discovered-client-options.interface.js';
import { DiscoveryHub } from '../../libs/etcd-discovery/src/discovery/discovery-hub.js';
import { InvalidDiscoveryOptionsError } from '../../libs/etcd-discovery/src/options/invalid-options.error.js';
import type { RegistrationOptions } from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import type { RegistrationState } from '../../libs/etcd-discovery/src/server/registration-state.js';
import { discoveryOptions, leaseState, readKey, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { backgroundLoad, GREETER_PROTO_PATH, GreeterServer, SERVICE, summarize, warmUp, type GreeterClient } from '../support/grpc-servers.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, waitFor } from '../support/wait.js';
import { followService } from './follow-service.js';

const logs = recordLogs();
const fx = useEtcd();

/** An EtcdRegistration on its own library client, withdrawn and closed after the test. */
function newRegistration(namespace: string, registration: RegistrationOptions | RegistrationOptions[]): EtcdRegistration {
  const options = discoveryOptions(fx.etcd.endpoint, namespace, { registration });
  const client = createEtcdClient(options.etcd);
  const registrationUnderTest = new EtcdRegistration(client, options);
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => registrationUnderTest.withdraw());
  return registrationUnderTest;
}

function recordStates(registration: EtcdRegistration): RegistrationState[] {
  const states: RegistrationState[] = [];
  const subscription = registration.state$.subscribe((state) => states.push(state));
  fx.cleanup.add(() => subscription.unsubscribe());
  return states;
}

async function metadataInEtcd(key: string): Promise<Record<string, unknown> | undefined> {
  const held = await readKey(fx.outsider, key);
  return held ? (JSON.parse(held.value) as { Metadata: Record<string, unknown> }).Metadata : undefined;
}

/** A greeter server registered in etcd as `SERVICE` with `metadata`. */
async function registeredServer(namespace: string, metadata: Record<string, unknown>): Promise<{ server: GreeterServer; registration: EtcdRegistration }> {
  const server = await GreeterServer.start();
  fx.cleanup.add(() => server.forceShutdown());
  const registration = newRegistration(namespace, { serviceName: SERVICE, metadata });
  registration.register({ address: { host: '127.0.0.1', port: server.port }, grpcServices: ['greeter.Greeter'] });
  await registration.whenRegistered();
  return { server, registration };
}

/** A discovering client on its own etcd client, as a calling app has. */
function discoveringClient(namespace: string, options: Partial<DiscoveredClientOptions> = {}): GreeterClient {
  const client = createEtcdClient(discoveryOptions(fx.etcd.endpoint, namespace).etcd);
  const hub = new DiscoveryHub(client, namespace);
  const factory = new ClientFactory(hub, 5_000);
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => hub.close());
  fx.cleanup.add(() => factory.close());
  return factory.createClient(SERVICE, { package: 'greeter', protoPath: GREETER_PROTO_PATH, ...options }).getService<GreeterClient>('Greeter');
}

describe('registration state', () => {
  it('goes idle -> registering -> registered -> paused -> registering -> registered -> deregistering -> deregistered, then completes', async () => {
    const registration = newRegistration(uniqueNamespace('state'), { serviceName: 'alpha' });
    const states = recordStates(registration);
    let completed = false;
    registration.state$.subscribe({ complete: () => (completed = true) });
    expect(registration.state).toBe('idle');

    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    await registration.whenRegistered();
    await registration.pause();
    await registration.resume();
    await registration.withdraw();

    expect(states).toEqual(['idle', 'registering', 'registered', 'paused', 'registering', 'registered', 'deregistering', 'deregistered']);
    expect(completed).toBe(true);
    await expect(registration.pause()).rejects.toThrow(/pause\(\) after shutdown began/);
  });

  it('reports lost when an outsider revokes the lease, and registered again once re-registered', async () => {
    const registration = newRegistration(uniqueNamespace('lost'), { serviceName: 'alpha' });
    const states = recordStates(registration);
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    await registration.whenRegistered();

    await fx.outsider.leaseClient.leaseRevoke({ ID: registration.leaseId! });
    await waitFor(() => states.at(-1) === 'registered' && states.includes('lost'), 5_000, { what: 'lost, then registered again' });
    expect(states.slice(-2)).toEqual(['lost', 'registered']);
    expect(registration.leasesGranted).toBe(2);
  });
});

describe('pause() and resume()', () => {
  it('removes the record while the lease stays alive, keeps it out when deleted meanwhile, puts it back on the same lease', async () => {
    const ns = uniqueNamespace('pause');
    const registration = newRegistration(ns, { serviceName: 'alpha', metadata: { zone: 'eu-1' } });
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    await registration.whenRegistered();
    const key = `${ns}/alpha/${registration.instanceId}`;
    const lease = registration.leaseId!;
    const followed = followService(fx, ns, 'alpha');
    await waitFor(() => followed.addresses()?.length === 1, 3_000, { what: 'the follower to list the instance' });

    await registration.pause();
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    await waitFor(() => followed.addresses()?.length === 0, 3_000, { what: 'the follower to see the instance leave' });
    // Past a TTL (2 s): the lease is still kept alive while paused, and nothing puts the key back.
    await sleep(2_500);
    expect((await leaseState(fx.outsider, lease)).ttl).toBeGreaterThan(0);
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    expect(registration.isRegistered).toBe(false);

    await registration.resume();
    expect(await readKey(fx.outsider, key)).toMatchObject({ lease });
    expect(await metadataInEtcd(key)).toMatchObject({ zone: 'eu-1' });
    expect(registration.state).toBe('registered');
    await waitFor(() => followed.addresses()?.length === 1, 3_000, { what: 'the follower to see the instance back' });
    expect(registration.leasesGranted).toBe(1);
  });

  it('pause() before the server starts keeps the process out of etcd until resume()', async () => {
    const ns = uniqueNamespace('pause-early');
    const registration = newRegistration(ns, { serviceName: 'alpha' });
    await registration.pause();
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    const key = `${ns}/alpha/${registration.instanceId}`;
    await sleep(500);
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    expect(registration.state).toBe('paused');
    await registration.resume();
    expect(await readKey(fx.outsider, key)).toBeDefined();
    expect(registration.state).toBe('registered');
  });

  it('takes a server out of rotation under load with 0 failed calls, and back in', async () => {
    const ns = uniqueNamespace('pause-load');
    const a = await registeredServer(ns, {});
    const b = await registeredServer(ns, {});
    const client = discoveringClient(ns);
    await warmUp(client, [a.server, b.server]);
    const load = backgroundLoad(client, 8);

    await sleep(300);
    await a.registration.pause();
    await sleep(300);
    const receivedWhenOut = a.server.received.length;
    await sleep(500);
    const receivedWhileOut = a.server.received.length - receivedWhenOut;
    await a.registration.resume();
    await waitFor(() => a.server.received.length > receivedWhenOut + 20, 3_000, { what: 'calls to reach the resumed server' });
    const result = summarize(await load.stop());

    expect(result.failures).toEqual({});
    expect(receivedWhileOut).toBe(0);
    expect(b.server.received.length).toBeGreaterThan(100);
  });
});

describe('update(metadata)', () => {
  it('merges fields into the running record on the same lease; undefined removes a field; the registrar fields stay', async () => {
    const ns = uniqueNamespace('update');
    const registration = newRegistration(ns, { serviceName: 'alpha', metadata: { zone: 'eu-1', version: '1.0.0' } });
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: ['greeter.Greeter'] });
    await registration.whenRegistered();
    const key = `${ns}/alpha/${registration.instanceId}`;
    const lease = registration.leaseId;
    const followed = followService(fx, ns, 'alpha');
    await waitFor(() => followed.addresses()?.length === 1, 3_000, { what: 'the follower to list the instance' });

    await registration.update({ weight: 5, version: undefined });
    expect(await metadataInEtcd(key)).toEqual({ zone: 'eu-1', weight: 5, grpcServices: ['greeter.Greeter'], startedAt: expect.any(String) });
    expect((await readKey(fx.outsider, key))?.lease).toBe(lease);
    expect(registration.instances[0].metadata).toMatchObject({ zone: 'eu-1', weight: 5 });
    await waitFor(() => followed.latest()?.[0]?.metadata.weight === 5, 3_000, { what: 'the follower to see weight 5' });

    // Rejected updates write nothing.
    await expect(registration.update({ weight: -1 })).rejects.toThrow(InvalidDiscoveryOptionsError);
    await expect(registration.update({ weight: -1 })).rejects.toThrow(/update\(metadata\)\.weight/);
    await expect(registration.update({ zone: 'eu-2' }, { serviceName: 'beta' })).rejects.toThrow(/does not register "beta"/);
    await expect(registration.update('zone' as never)).rejects.toThrow(/plain object/);
    expect(await metadataInEtcd(key)).toMatchObject({ zone: 'eu-1', weight: 5 });
    expect(registration.state).toBe('registered');
  });

  it('updates log nothing at the default level and, made while paused, keep at most four values of ours per key', async () => {
    const ns = uniqueNamespace('update-quiet');
    const registration = newRegistration(ns, { serviceName: 'alpha' });
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    await registration.whenRegistered();
    const key = `${ns}/alpha/${registration.instanceId}`;
    const mark = logs.lines.length;
    for (let weight = 1; weight <= 20; weight++) await registration.update({ weight });
    expect(await metadataInEtcd(key)).toMatchObject({ weight: 20 });
    expect(logs.lines.slice(mark).filter((line) => line.level !== 'debug' && line.level !== 'verbose')).toEqual([]);

    await registration.pause();
    // Paused right after an update: the record is gone although the key watch may still show the one before.
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    for (let weight = 21; weight <= 520; weight++) await registration.update({ weight });
    const ownValues = (registration as unknown as { registrar: { ownValues: Map<string, Set<string>> } }).registrar.ownValues;
    expect(ownValues.get(key)!.size).toBeLessThanOrEqual(4);
    await registration.resume();
    expect(await metadataInEtcd(key)).toMatchObject({ weight: 520 });
  });

  it('an update made while paused is written by resume(); an old record of ours left in etcd is replaced, not a conflict', async () => {
    const ns = uniqueNamespace('update-paused');
    const registration = newRegistration(ns, [{ serviceName: 'alpha' }, { serviceName: 'beta' }]);
    registration.register({ address: { host: '127.0.0.1', port: 50_051 }, grpcServices: [] });
    await registration.whenRegistered();
    const alphaKey = `${ns}/alpha/${registration.instanceId}`;
    const betaKey = `${ns}/beta/${registration.instanceId}`;
    const before = (await readKey(fx.outsider, alphaKey))!;

    await registration.pause();
    await registration.update({ zone: 'eu-2' }, { serviceName: 'alpha' });
    expect(await readKey(fx.outsider, alphaKey)).toBeUndefined();
    // Someone restores our old record meanwhile (say, from a backup): pause removes it again, resume replaces it.
    await fx.outsider.put(alphaKey).value(before.value);
    await waitFor(async () => (await readKey(fx.outsider, alphaKey)) === undefined, 3_000, { what: 'the restored record to be removed' });
    await fx.outsider.put(alphaKey).value(before.value);
    await registration.resume().catch(() => undefined);
    // resume() resolves once etcd holds the records again, also those whose deletion its key watch has not seen yet.
    const beta = await metadataInEtcd(betaKey);
    expect(beta).toBeDefined();
    expect(beta).not.toHaveProperty('zone');
    await waitFor(async () => (await metadataInEtcd(alphaKey))?.zone === 'eu-2', 3_000, { what: 'the update to be written' });
    expect(registration.state).toBe('registered');
  });

  it('weight changes shift a metadata_weighted client; a p2c client keeps its statistics across an update', async () => {
    const ns = uniqueNamespace('update-load');
    const a = await registeredServer(ns, { weight: 1 });
    const b = await registeredServer(ns, { weight: 1 });
    const weighted = discoveringClient(ns, { loadBalancing: 'metadata_weighted' });
    await warmUp(weighted, [a.server, b.server]);

    await a.registration.update({ weight: 9 });
    await sleep(300);
    const aBefore = a.server.received.length;
    const bBefore = b.server.received.length;
    const load = backgroundLoad(weighted, 4);
    await waitFor(() => a.server.received.length + b.server.received.length - aBefore - bBefore >= 500, 10_000, { what: '500 calls' });
    const result = summarize(await load.stop());
    const toA = a.server.received.length - aBefore;
    const toB = b.server.received.length - bBefore;
    expect(result.failures).toEqual({});
    // 9:1 by weight; before the update it was 1:1.
    expect(toA / (toA + toB)).toBeGreaterThan(0.8);

    // p2c: a slow server stays avoided right after an update of its record. Statistics rebuilt from zero would make
    // it look idle (no latency measured, nothing in flight): every call for the next 300 ms would go to it.
    a.server.behaviour = { delayMs: 300 };
    const p2c = discoveringClient(ns, { loadBalancing: 'p2c_ewma' });
    await warmUp(p2c, [a.server, b.server]);
    const learning = backgroundLoad(p2c, 8);
    await sleep(1_000);
    await learning.stop();
    await a.registration.update({ zone: 'moved' });
    await sleep(300);
    const slowBefore = a.server.received.length;
    const fastBefore = b.server.received.length;
    const after = backgroundLoad(p2c, 8);
    await sleep(400);
    const slowCalls = a.server.received.length - slowBefore;
    const fastCalls = b.server.received.length - fastBefore;
    const afterResult = summarize(await after.stop());
    expect(afterResult.failures).toEqual({});
    expect(fastCalls).toBeGreaterThan(50);
    // At most the one call p2c forces to an endpoint not picked for a second (FORCE_PICK_MS), and one more if the window straddles two.
    expect(slowCalls).toBeLessThanOrEqual(2);
  });
});

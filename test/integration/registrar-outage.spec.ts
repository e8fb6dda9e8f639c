// Registration across etcd outages: down longer than the TTL while registered, and down at startup.
import { describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import type { ServingEndpoint } from '../../libs/etcd-discovery/src/registry/registrar.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { discoveryOptions, leaseState, readKey, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useEtcd } from '../support/use-etcd.js';
import { holdsFor, sleep, waitFor } from '../support/wait.js';

const TTL_SECONDS = 2;
const ENDPOINT: ServingEndpoint = { address: { host: '127.0.0.1', port: 50_052 }, grpcServices: ['greeter.Greeter'] };

const logs = recordLogs();
// Reads after an outage go through fx.renewOutsider(): a client made before it would measure itself, not the library.
const fx = useEtcd();

function newRegistration(namespace: string) {
  const options = discoveryOptions(fx.etcd.endpoint, namespace, {
    registration: { serviceName: 'alpha' },
    server: { ttlSeconds: TTL_SECONDS },
  });
  const client = createEtcdClient(options.etcd);
  const registration = new EtcdRegistration(client, options);
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => registration.withdraw());
  return registration;
}

describe('registrar across etcd outages', () => {
  it('is registered on a live lease within 2 s of etcd coming back from an outage longer than 2 x TTL', async () => {
    const ns = uniqueNamespace('outage');
    const registration = newRegistration(ns);
    registration.register(ENDPOINT);
    await registration.whenRegistered();
    const key = `${ns}/alpha/${registration.instanceId}`;
    const before = (await readKey(fx.renewOutsider(), key))!;
    expect(before).toBeDefined();
    const mark = logs.lines.length;

    await fx.etcd.stop();
    // The outage outlasts 2 x TTL, so etcd3 gives the lease up as lost during it (docs/field-notes.md).
    await sleep(2 * TTL_SECONDS * 1_000 + 1_000);
    await waitFor(() => logs.lines.slice(mark).some((line) => line.message.includes(`lease ${before.lease} lost`)), 1_000, {
      what: 'the lease reported lost during the outage',
    });
    await fx.etcd.restart();
    const healthyAt = Date.now();
    const client = fx.renewOutsider();

    // etcd extends old leases across a restart, so the key alone proves nothing: it must be ours
    // and sit on a lease somebody keeps alive, i.e. a new one.
    const after = await waitFor(async () => {
      const state = await readKey(client, key);
      if (!state || state.value !== before.value || state.lease === before.lease) return undefined;
      return (await leaseState(client, state.lease)).ttl > 0 ? state : undefined;
    }, 2_000, { what: 'our record on a new live lease' });
    expect(Date.now() - healthyAt).toBeLessThan(2_000);
    expect(registration.leasesGranted).toBe(2);
    expect(registration.isRegistered).toBe(true);

    // The old lease is revoked once the key has moved.
    await waitFor(async () => (await leaseState(client, before.lease)).ttl === -1, 1_000, { what: 'old lease revoked' });
    await waitFor(() => logs.lines.slice(mark).some((line) => /re-registered alpha/.test(line.message)), 500, {
      what: 're-registered log line',
    });
    expect(logs.lines.slice(mark).filter((line) => line.message.includes(`lease ${before.lease} lost`))).toHaveLength(1);

    // And it stays: the new lease is kept alive well past 2 x TTL.
    await holdsFor(async () => (await readKey(client, key))?.lease === after.lease, 2 * TTL_SECONDS * 1_000 + 500, {
      what: 'key kept alive after the outage',
    });
  });

  it('registers within 2 s of etcd coming up when etcd was down at startup, and whenRegistered() resolves', async () => {
    const ns = uniqueNamespace('late-etcd');
    await fx.etcd.stop();
    const mark = logs.lines.length;
    const registration = newRegistration(ns);
    expect(() => registration.register(ENDPOINT)).not.toThrow();
    let registeredAt: number | undefined;
    void registration.whenRegistered().then(() => (registeredAt = Date.now()));

    await sleep(2_500);
    expect(registration.isRegistered).toBe(false);
    expect(registeredAt).toBeUndefined();
    // Logged once, not once per retry.
    expect(logs.lines.slice(mark).filter((line) => line.message.includes('cannot grant a lease yet'))).toHaveLength(1);

    await fx.etcd.restart();
    const healthyAt = Date.now();
    await waitFor(() => registeredAt, 2_000, { what: 'whenRegistered() to resolve' });
    expect(registeredAt! - healthyAt).toBeLessThan(2_000);
    const key = `${ns}/alpha/${registration.instanceId}`;
    const client = fx.renewOutsider();
    const state = await waitFor(() => readKey(client, key), 1_000, { what: 'the key in etcd' });
    expect(JSON.parse(state.value)).toMatchObject({ Addr: '127.0.0.1:50052' });
    expect((await leaseState(client, state.lease)).grantedTtl).toBe(TTL_SECONDS);
    expect(registration.leasesGranted).toBe(1);
    expect(registration.isRegistered).toBe(true);
  });
});

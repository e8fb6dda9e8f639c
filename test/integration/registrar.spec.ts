// Registration against a real etcd: key layout and value, the one shared lease, withdrawal,
// and recovery from an outside actor revoking the lease or deleting the key; create-only claims.
import { Logger } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import type { RegistrationOptions } from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import { createEtcdClient } from '../../libs/etcd-discovery/src/registry/etcd-client.factory.js';
import { LeaseKeeper } from '../../libs/etcd-discovery/src/registry/lease-keeper.js';
import { Registrar, type ServingEndpoint } from '../../libs/etcd-discovery/src/registry/registrar.js';
import { EtcdRegistration } from '../../libs/etcd-discovery/src/server/etcd-registration.js';
import { discoveryOptions, leaseState, readKey, record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useEtcd } from '../support/use-etcd.js';
import { holdsFor, sleep, timed, waitFor } from '../support/wait.js';

const TTL_SECONDS = 2;
const ENDPOINT: ServingEndpoint = { address: { host: '127.0.0.1', port: 50_051 }, grpcServices: ['greeter.Greeter'] };

const logs = recordLogs();
const fx = useEtcd();

/** An EtcdRegistration on its own library client, withdrawn and closed after the test. */
function newRegistration(namespace: string, registration: RegistrationOptions | RegistrationOptions[]) {
  const options = discoveryOptions(fx.etcd.endpoint, namespace, { registration, server: { ttlSeconds: TTL_SECONDS } });
  const client = createEtcdClient(options.etcd);
  const registrationUnderTest = new EtcdRegistration(client, options);
  fx.cleanup.add(() => client.close());
  fx.cleanup.add(() => registrationUnderTest.withdraw());
  return registrationUnderTest;
}

async function registered(registration: EtcdRegistration): Promise<void> {
  registration.register(ENDPOINT);
  await waitFor(() => registration.isRegistered, 3_000, { what: 'first registration' });
  await registration.whenRegistered();
}

describe('registrar against real etcd', () => {
  it('registers <ns>/<service>/<instanceId> as {"Addr","Metadata"} on one TTL-2 lease shared by every registration, kept alive', async () => {
    const ns = uniqueNamespace('register');
    const registration = newRegistration(ns, [
      { serviceName: 'alpha', metadata: { version: '1.2.0', zone: 'eu-1' } },
      { serviceName: 'beta', host: '10.1.2.3', port: 7_000 },
    ]);
    await registered(registration);

    const alphaKey = `${ns}/alpha/${registration.instanceId}`;
    const betaKey = `${ns}/beta/${registration.instanceId}`;
    expect(registration.instances.map((instance) => instance.key)).toEqual([alphaKey, betaKey]);

    const all = await fx.outsider.getAll().prefix(`${ns}/`).exec();
    expect(all.kvs.map((kv) => kv.key.toString()).sort()).toEqual([alphaKey, betaKey]);

    const alpha = (await readKey(fx.outsider, alphaKey))!;
    const alphaRecord = JSON.parse(alpha.value) as Record<string, unknown>;
    expect(Object.keys(alphaRecord)).toEqual(['Addr', 'Metadata']);
    expect(alphaRecord).toEqual({
      Addr: '127.0.0.1:50051',
      Metadata: { version: '1.2.0', zone: 'eu-1', grpcServices: ['greeter.Greeter'], startedAt: expect.any(String) },
    });
    const beta = (await readKey(fx.outsider, betaKey))!;
    expect(JSON.parse(beta.value)).toMatchObject({ Addr: '10.1.2.3:7000' });

    // ONE lease for the process: the same id on every key, granted once.
    expect(alpha.lease).not.toBe('0');
    expect(beta.lease).toBe(alpha.lease);
    expect(registration.leasesGranted).toBe(1);
    const lease = await leaseState(fx.outsider, alpha.lease);
    expect(lease.grantedTtl).toBe(TTL_SECONDS);
    expect(lease.ttl).toBeGreaterThan(0);
    expect(lease.ttl).toBeLessThanOrEqual(TTL_SECONDS);
    expect(lease.keys.sort()).toEqual([alphaKey, betaKey]);
    expect(logs.count(`registered alpha as ${alphaKey}`, 'log')).toBe(1);

    // Kept alive: still there, same lease, well past 2 x TTL.
    await holdsFor(async () => (await readKey(fx.outsider, alphaKey))?.lease === alpha.lease, 2 * TTL_SECONDS * 1_000 + 500, {
      what: 'key kept alive on its lease',
    });
    expect(registration.leasesGranted).toBe(1);
  });

  it('withdraw() deletes every key at once (well before the TTL) and revokes the lease', async () => {
    const ns = uniqueNamespace('withdraw');
    const registration = newRegistration(ns, [{ serviceName: 'alpha' }, { serviceName: 'beta' }]);
    await registered(registration);
    const alphaKey = `${ns}/alpha/${registration.instanceId}`;
    const { lease } = (await readKey(fx.outsider, alphaKey))!;

    const { ms } = await timed(() => registration.withdraw());
    expect(ms).toBeLessThan(1_000);
    const left = await fx.outsider.getAll().prefix(`${ns}/`).keys();
    expect(left).toEqual([]);
    expect((await leaseState(fx.outsider, lease)).ttl).toBe(-1);
    expect(registration.isRegistered).toBe(false);
    expect(logs.count(`deregistered alpha as ${alphaKey}`, 'log')).toBe(1);
  });

  it('re-registers with a new lease within 2 s when its lease is revoked from outside, and says so', async () => {
    const ns = uniqueNamespace('revoked');
    const registration = newRegistration(ns, { serviceName: 'alpha' });
    await registered(registration);
    const key = `${ns}/alpha/${registration.instanceId}`;
    const before = (await readKey(fx.outsider, key))!;
    const mark = logs.lines.length;

    await fx.outsider.leaseClient.leaseRevoke({ ID: before.lease });
    expect(await readKey(fx.outsider, key)).toBeUndefined();
    const { value: after, ms } = await timed(() =>
      waitFor(async () => {
        const state = await readKey(fx.outsider, key);
        return state && state.lease !== before.lease ? state : undefined;
      }, 2_000, { what: 'key back on a new lease' }),
    );
    expect(ms).toBeLessThan(2_000);
    expect(after.value).toBe(before.value);
    expect(registration.leasesGranted).toBe(2);
    const lease = await leaseState(fx.outsider, after.lease);
    expect(lease.grantedTtl).toBe(TTL_SECONDS);
    expect(lease.keys).toEqual([key]);

    const reRegistered = () =>
      logs.lines.slice(mark).filter((line) => /re-registered alpha/.test(line.message) && line.message.includes(`lease ${after.lease}`));
    await waitFor(() => reRegistered().length > 0, 500, { what: 're-registered log line' });
    expect(reRegistered()).toHaveLength(1);
    expect(logs.lines.slice(mark).filter((line) => line.message.includes(`lease ${before.lease} lost`))).toHaveLength(1);

    // The new lease is kept alive.
    await holdsFor(async () => (await readKey(fx.outsider, key))?.lease === after.lease, TTL_SECONDS * 1_000 + 500, {
      what: 'key kept alive on the new lease',
    });
  });

  it('puts its key back within 2 s, same value and lease, each time someone deletes it', async () => {
    const ns = uniqueNamespace('deleted');
    const registration = newRegistration(ns, [{ serviceName: 'alpha' }, { serviceName: 'beta' }]);
    await registered(registration);
    const alphaKey = `${ns}/alpha/${registration.instanceId}`;
    const betaKey = `${ns}/beta/${registration.instanceId}`;
    const alpha = (await readKey(fx.outsider, alphaKey))!;
    const beta = (await readKey(fx.outsider, betaKey))!;
    const mark = logs.lines.length;

    // The key may be back before a read after the delete: tell the new key by its create revision.
    const createdAfter = async (key: string, revision: number) => {
      const kv = (await fx.outsider.get(key).exec()).kvs[0];
      return kv && Number(kv.create_revision) > revision ? { value: kv.value.toString(), lease: kv.lease } : undefined;
    };
    for (let round = 0; round < 3; round++) {
      const deleted = await fx.outsider.delete().key(alphaKey);
      expect(deleted.deleted).toBe('1');
      const back = await waitFor(() => createdAfter(alphaKey, Number(deleted.header.revision)), 2_000, {
        what: `key back (round ${round + 1})`,
      });
      expect(back).toEqual(alpha);
      expect(await readKey(fx.outsider, betaKey)).toEqual(beta);
    }

    // Both keys at once.
    const both = await fx.outsider.delete().prefix(`${ns}/`);
    expect(both.deleted).toBe('2');
    const at = Number(both.header.revision);
    await waitFor(async () => (await createdAfter(alphaKey, at)) && (await createdAfter(betaKey, at)), 2_000, {
      what: 'both keys back',
    });
    expect(await readKey(fx.outsider, alphaKey)).toEqual(alpha);
    expect(await readKey(fx.outsider, betaKey)).toEqual(beta);
    expect(registration.leasesGranted).toBe(1);
    expect(logs.lines.slice(mark).filter((line) => /re-registered .* after: key .* was deleted/.test(line.message)).length).toBeGreaterThanOrEqual(4);
  });

  describe('create-only claim of a key that holds another record', () => {
    const INSTANCE_ID = 'fixed-instance';
    const FOREIGN = record('10.9.9.9:1234', { owner: 'someone-else' });

    /** A Registrar with a chosen instance id, on its own client; stopped and closed after the test. */
    async function conflictingRegistrar() {
      const ns = uniqueNamespace('conflict');
      const key = `${ns}/svc/${INSTANCE_ID}`;
      await fx.outsider.put(key).value(FOREIGN);
      const options = discoveryOptions(fx.etcd.endpoint, ns);
      const client = createEtcdClient(options.etcd);
      const logger = new Logger('test');
      const keeper = new LeaseKeeper(client, TTL_SECONDS, logger);
      const registrar = new Registrar(client, keeper, ns, INSTANCE_ID, logger);
      fx.cleanup.add(() => client.close());
      fx.cleanup.add(() => registrar.stop(3_000));
      const mark = logs.lines.length;
      registrar.start([{ serviceName: 'svc', metadata: {} }], ENDPOINT);
      const errors = () => logs.lines.slice(mark).filter((line) => line.level === 'error' && line.message.includes(key));
      await waitFor(() => errors().length > 0, 2_000, { what: 'an error naming the key' });
      return { ns, key, registrar, errors, mark };
    }

    it('never overwrites it, logs one error, and leaves it in place on stop', async () => {
      const { key, registrar, errors } = await conflictingRegistrar();
      await holdsFor(async () => (await readKey(fx.outsider, key))?.value === FOREIGN, 1_500, { what: 'foreign record untouched' });
      expect(await readKey(fx.outsider, key)).toEqual({ value: FOREIGN, lease: '0' });
      expect(errors()).toHaveLength(1);

      await registrar.stop(3_000);
      expect(await readKey(fx.outsider, key)).toEqual({ value: FOREIGN, lease: '0' });
    });

    it('does not report itself registered while the other record holds its key', async () => {
      const { key, registrar, mark } = await conflictingRegistrar();
      let resolved = false;
      void registrar.whenRegistered().then(() => (resolved = true));
      await sleep(500);
      expect(registrar.isRegistered).toBe(false);
      expect(resolved).toBe(false);
      expect(logs.lines.slice(mark).filter((line) => line.level === 'log' && line.message.includes(`registered svc as ${key}`))).toEqual([]);
    });

    it('takes the key within 2 s once the other record is gone', async () => {
      const { key } = await conflictingRegistrar();
      await fx.outsider.delete().key(key);
      const mine = await waitFor(async () => {
        const state = await readKey(fx.outsider, key);
        return state && state.value !== FOREIGN ? state : undefined;
      }, 2_000, { what: 'our record at the freed key' });
      expect(JSON.parse(mine.value)).toMatchObject({ Addr: '127.0.0.1:50051' });
      expect(mine.lease).not.toBe('0');
    });
  });
});

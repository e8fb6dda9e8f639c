// etcd RBAC as a deployment confines apps: the serving user may write under the namespace prefix only, callers
// may only read it. The library must work with exactly those rights, and etcd must refuse the rest.
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { firstValueFrom, timeout } from 'rxjs';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { NoLiveInstanceError } from '../../libs/etcd-discovery/src/index.js';
import { leaseState, readKey, recordLogs } from '../support/etcd.js';
import { useCleanup } from '../support/use-etcd.js';
import { sleep, waitFor } from '../support/wait.js';
import { msSince, within } from './deadline.js';
import { GREETER_CLIENT, callMany, greeterOf, startCallingApp, startServingApp, type ServingApp } from './nest-apps.js';
import { etcdClient, startRbacEtcd, type EtcdUser, type RbacEtcd } from './secure-etcd.js';
import { securityCheck } from './security-check.js';

const TTL_SECONDS = 2;
const suffix = randomBytes(3).toString('hex');
/** The roles are granted on `${NAMESPACE}/`, so every check of this file shares it. */
const NAMESPACE = `/sec-rbac-${suffix}`;
const PREFIX = `${NAMESPACE}/greeter/`;
const logs = recordLogs();
const cleanup = useCleanup();
let rbac: RbacEtcd;
let root: Etcd3;

beforeAll(async () => {
  rbac = await startRbacEtcd(NAMESPACE, suffix);
  root = etcdClient(rbac.etcd.endpoint, { auth: rbac.root });
});

afterAll(async () => {
  root?.close();
  await rbac?.etcd.destroy();
});

function discovery(user: EtcdUser) {
  return {
    etcd: { hosts: [rbac.etcd.endpoint], auth: { ...user }, requestTimeoutMs: 2_000 },
    namespace: NAMESPACE,
    server: { ttlSeconds: TTL_SECONDS, drainDelayMs: 0 },
  };
}

async function startServer(): Promise<ServingApp> {
  const server = await startServingApp({ discovery: { ...discovery(rbac.writer), registration: { serviceName: 'greeter' } }, logger: logs });
  cleanup.add(server.close);
  await within(server.registration.whenRegistered(), 10_000, `registration as ${rbac.writer.username}`);
  return server;
}

/** The etcd error a request ends with, or 'allowed'. */
async function outcome(request: () => Promise<unknown>): Promise<string> {
  return request().then(
    () => 'allowed',
    (error: unknown) => (error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)),
  );
}

const permissionLines = (from: number): string[] =>
  logs.lines.slice(from).filter((line) => /permission denied/i.test(line.message)).map((line) => line.message);

describe('etcd RBAC (auth enabled, users confined to the namespace prefix)', () => {
  securityCheck(5, 'RBAC serving user', async ({ note }) => {
    const logFrom = logs.lines.length;
    const started = performance.now();
    const server = await startServer();
    note(`user ${rbac.writer.username} (role svc-rw: readwrite on ${NAMESPACE}/ only) registered in ${msSince(started)} ms`);

    const key = `${PREFIX}${server.registration.instanceId}`;
    const registered = await readKey(root, key);
    expect(registered).toBeDefined();
    // Keepalives need no key permission, but a lost lease would show as a second grant or a new lease id.
    const holdMs = (2 * TTL_SECONDS + 1) * 1_000;
    await sleep(holdMs);
    const later = await readKey(root, key);
    const lease = await leaseState(root, registered!.lease);
    note(`${holdMs} ms later (${2 * TTL_SECONDS + 1} s > 2 x TTL ${TTL_SECONDS} s): key on the same lease ${later?.lease === registered!.lease ? 'yes' : 'no'}, remaining TTL ${lease.ttl} s, leases granted ${server.registration.leasesGranted}`);
    expect(later?.lease).toBe(registered!.lease);
    expect(lease.ttl).toBeGreaterThan(0);
    expect(server.registration.leasesGranted).toBe(1);
    expect(server.registration.isRegistered).toBe(true);

    const closing = performance.now();
    await server.close();
    const gone = await readKey(root, key);
    const revoked = await leaseState(root, registered!.lease);
    note(`app.close() took ${msSince(closing)} ms; then key ${gone === undefined ? 'gone' : 'still there'}, lease TTL ${revoked.ttl}`);
    expect(gone).toBeUndefined();
    expect(revoked.ttl).toBe(-1);
    const denied = permissionLines(logFrom);
    note(`${denied.length} "permission denied" log lines`);
    expect(denied).toEqual([]);
  });

  securityCheck(6, 'RBAC read-only client', async ({ note }) => {
    const logFrom = logs.lines.length;
    const first = await startServer();
    const caller = await startCallingApp(discovery(rbac.reader), logs);
    cleanup.add(caller.close);
    const greeter = await greeterOf(caller);
    const before = await callMany(greeter, 10);
    expect(Object.fromEntries(before)).toEqual({ [first.registration.instanceId]: 10 });
    note(`user ${rbac.reader.username} (role svc-ro: read on ${NAMESPACE}/ only) discovered the service; 10 of 10 calls answered`);

    const joining = performance.now();
    const second = await startServer();
    const seen = await waitFor(async () => {
      const list = await firstValueFrom(caller.clients.instances('greeter').pipe(timeout(1_000)));
      return list.length === 2 ? list : undefined;
    }, 5_000, { what: 'the read-only client to list the second server' });
    note(`a second server registered; the read-only client listed ${seen.length} instances within ${msSince(joining)} ms of its start`);

    const after = await callMany(greeter, 20);
    note(`20 calls then went ${[...after.values()].join(' + ')} to the two servers`);
    expect([...after.keys()].sort()).toEqual([first.registration.instanceId, second.registration.instanceId].sort());
    expect(permissionLines(logFrom)).toEqual([]);
  });

  securityCheck(7, 'RBAC user without access to the prefix', async ({ note }) => {
    const caller = await startCallingApp(discovery(rbac.stranger), logs);
    cleanup.add(caller.close);
    const started = performance.now();
    const error = await greeterOf(caller, { ...GREETER_CLIENT, waitTimeoutMs: 3_000 }).then(
      () => new Error('discovery succeeded without read access'),
      (caught: unknown) => caught,
    );
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    note(`user ${rbac.stranger.username} (read on another prefix only): getService failed after ${msSince(started)} ms with "${message.slice(0, 400)}"`);
    expect(error).toBeInstanceOf(NoLiveInstanceError);
    expect((error as NoLiveInstanceError).message).toContain('permission denied');
  });

  securityCheck(8, 'write outside the prefix refused', async ({ note }) => {
    const writer = etcdClient(rbac.etcd.endpoint, { auth: rbac.writer });
    const reader = etcdClient(rbac.etcd.endpoint, { auth: rbac.reader });
    cleanup.add(() => writer.close());
    cleanup.add(() => reader.close());
    const record = JSON.stringify({ Addr: '127.0.0.1:9', Metadata: {} });

    // Control: the same client may write inside its prefix, so a refusal below is the prefix rule.
    const inside = await outcome(() => writer.put(`${PREFIX}control-${suffix}`).value(record).exec());
    await root.delete().key(`${PREFIX}control-${suffix}`);
    const attempts = {
      [`${rbac.writer.username} put /outside-${suffix}/x`]: await outcome(() => writer.put(`/outside-${suffix}/x`).value(record).exec()),
      // The grant ends with "/": a sibling namespace sharing the name's start is outside it.
      [`${rbac.writer.username} put ${NAMESPACE}-evil/greeter/x`]: await outcome(() => writer.put(`${NAMESPACE}-evil/greeter/x`).value(record).exec()),
      [`${rbac.writer.username} get /outside-${suffix}/`]: await outcome(() => writer.getAll().prefix(`/outside-${suffix}/`).keys()),
      [`${rbac.reader.username} put ${PREFIX}x`]: await outcome(() => reader.put(`${PREFIX}x`).value(record).exec()),
      [`${rbac.reader.username} delete ${PREFIX}`]: await outcome(() => reader.delete().prefix(PREFIX).exec()),
    };
    note(`${rbac.writer.username} put inside ${PREFIX}: ${inside}`);
    for (const [attempt, result] of Object.entries(attempts)) note(`${attempt}: ${result}`);
    expect(inside).toBe('allowed');
    for (const result of Object.values(attempts)) expect(result).toMatch(/EtcdPermissionDeniedError: .*permission denied/);
    expect(await root.getAll().prefix(`/outside-${suffix}/`).keys()).toEqual([]);
    expect(await root.getAll().prefix(`${NAMESPACE}-evil/`).keys()).toEqual([]);
  });
});

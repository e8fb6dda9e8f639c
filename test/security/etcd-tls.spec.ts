// etcd over TLS: with mutual TLS apps register and discover over https://; a wrong CA or a missing client
// certificate ends in a clear error, never a crash, while registration keeps retrying in the background.
import { ClientGrpcProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { NoLiveInstanceError, type EtcdTlsOptions } from '../../libs/etcd-discovery/src/index.js';
import { createTestPki, type CertificateAuthority, type TestPki } from '../support/certs.js';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useCleanup } from '../support/use-etcd.js';
import { sleep, waitFor } from '../support/wait.js';
import { msSince, within } from './deadline.js';
import { GREETER_CLIENT, callMany, greeterOf, startCallingApp, startServingApp, type GreeterService } from './nest-apps.js';
import { etcdClient, rejectedConnections, rejectionReasons, startTlsEtcd, type TlsEtcd } from './secure-etcd.js';
import { securityCheck } from './security-check.js';

const WAIT_MS = 3_000;
/** A rejected handshake this long after the app started shows a retry loop, not the first attempt's own retries. */
const LATE_RETRY_MS = 2_500;
/** Attempts in flight at app.close() still reach etcd up to ~1 s after it (measured; 2 s under load). */
const CLOSE_QUIET_FROM_MS = 3_000;
const logs = recordLogs();
const cleanup = useCleanup();
let pki: TestPki;
let mtls: TlsEtcd;
let otherCa: CertificateAuthority;

beforeAll(async () => {
  pki = await createTestPki();
  mtls = await startTlsEtcd(pki, 'mtls', true);
  otherCa = await pki.createAuthority('unrelated-ca');
});

afterAll(async () => {
  await mtls?.etcd.destroy();
  await pki?.destroy();
});

const goodTls = (): EtcdTlsOptions => ({ rootCertificate: mtls.ca.cert, privateKey: mtls.clientCert.key, certChain: mtls.clientCert.cert });

function discovery(namespace: string, tls: EtcdTlsOptions) {
  return { etcd: { hosts: [mtls.etcd.endpoint], tls, requestTimeoutMs: 2_000 }, namespace, server: { ttlSeconds: 2, drainDelayMs: 0 } };
}

/** getService's outcome with a short wait: the error it ends with, and when. */
async function lookupFailure(namespace: string, tls: EtcdTlsOptions): Promise<{ error: unknown; ms: number }> {
  const caller = await startCallingApp(discovery(namespace, tls), logs);
  cleanup.add(caller.close);
  const started = performance.now();
  const error = await greeterOf(caller, { ...GREETER_CLIENT, waitTimeoutMs: WAIT_MS }).then(
    () => new Error('discovery succeeded where TLS had to fail'),
    (caught: unknown) => caught,
  );
  return { error, ms: msSince(started) };
}

describe('etcd over TLS (real etcd with --client-cert-auth)', () => {
  securityCheck(1, 'etcd mTLS', async ({ note }) => {
    const namespace = uniqueNamespace('sec-mtls');
    const started = performance.now();
    const server = await startServingApp({ discovery: { ...discovery(namespace, goodTls()), registration: { serviceName: 'greeter' } }, logger: logs });
    cleanup.add(server.close);
    await within(server.registration.whenRegistered(), 10_000, 'registration over https with a client certificate');
    note(`etcd at ${mtls.etcd.endpoint} with --client-cert-auth; the serving app registered over https in ${msSince(started)} ms`);

    const inspector = etcdClient(mtls.etcd.endpoint, { credentials: goodTls() });
    cleanup.add(() => inspector.close());
    const keys = await inspector.getAll().prefix(`${namespace}/greeter/`).keys();
    expect(keys).toEqual([`${namespace}/greeter/${server.registration.instanceId}`]);
    note(`its key ${keys[0]} read back over mTLS`);

    const caller = await startCallingApp(discovery(namespace, goodTls()), logs);
    cleanup.add(caller.close);
    const lookup = performance.now();
    const replies = await callMany(await greeterOf(caller), 20);
    expect(Object.fromEntries(replies)).toEqual({ [server.registration.instanceId]: 20 });
    note(`a calling app discovered it over mTLS and 20 of 20 calls succeeded in ${msSince(lookup)} ms`);

    const closing = performance.now();
    await server.close();
    expect(await inspector.getAll().prefix(`${namespace}/greeter/`).keys()).toEqual([]);
    note(`app.close() removed the key over mTLS in ${msSince(closing)} ms`);
  });

  securityCheck(2, 'etcd wrong CA', async ({ note }) => {
    const namespace = uniqueNamespace('sec-wrongca');
    const wrongCa: EtcdTlsOptions = { ...goodTls(), rootCertificate: otherCa.cert };

    const { error, ms } = await lookupFailure(namespace, wrongCa);
    note(`client trusting an unrelated CA: getService failed after ${ms} ms (wait ${WAIT_MS} ms) with ${describeError(error)}`);
    expect(error).toBeInstanceOf(NoLiveInstanceError);
    expect(ms).toBeGreaterThanOrEqual(WAIT_MS - 100);
    expect(ms).toBeLessThan(WAIT_MS + 3_000);
    await cleanup.run();

    // Registration with the wrong CA: the app serves, is not registered, and keeps trying in the background.
    const since = Date.now();
    const port = await freePort();
    const warnedBefore = logs.lines.length;
    const server = await startServingApp({
      discovery: { ...discovery(namespace, wrongCa), registration: { serviceName: 'greeter' } },
      url: `127.0.0.1:${port}`,
      logger: logs,
    });
    cleanup.add(server.close);
    const warning = await waitFor(
      () => logs.lines.slice(warnedBefore).find((line) => line.level === 'warn' && /TLS|certificate/i.test(line.message)),
      8_000,
      { what: 'a warning naming the TLS problem' },
    );
    note(`the serving app logged: "${warning.message.slice(0, 240)}"`);
    // Still trying well after the first attempts failed: etcd keeps seeing new handshakes from it.
    const late = await waitFor(async () => {
      const seen = await rejectedConnections(mtls.logFile, since + LATE_RETRY_MS);
      return seen.length > 0 ? seen : undefined;
    }, LATE_RETRY_MS + 8_000, { what: `etcd to reject a TLS connection from the registering app ${LATE_RETRY_MS} ms or more after it started` });
    const all = await rejectedConnections(mtls.logFile, since);
    const spanMs = Math.max(...all.map((entry) => entry.at)) - since;
    note(
      `etcd rejected ${all.length} TLS connections from it over ${spanMs} ms (${rejectionReasons(all)}; ` +
        `${(all.length / Math.max(spanMs / 1_000, 0.001)).toFixed(1)} handshakes/s), the first ${all[0].at - since} ms and one ` +
        `${late[0].at - since} ms after the app started: it keeps retrying`,
    );

    expect(server.registration.isRegistered).toBe(false);
    const inspector = etcdClient(mtls.etcd.endpoint, { credentials: goodTls() });
    cleanup.add(() => inspector.close());
    expect(await inspector.getAll().prefix(`${namespace}/`).keys()).toEqual([]);

    // Still up: its gRPC port answers a direct call.
    const direct = new ClientGrpcProxy({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: `127.0.0.1:${port}` });
    cleanup.add(() => direct.close());
    const reply = await firstValueFrom(direct.getService<GreeterService>('Greeter').sayHello({ name: 'direct' }));
    expect(reply.instanceId).toBe(server.registration.instanceId);
    note('meanwhile the app stayed up (a direct call to its port answered), unregistered, with no key under the namespace');

    const closing = performance.now();
    await server.close();
    const closedAt = Date.now();
    note(`app.close() returned in ${msSince(closing)} ms`);
    // Closing ends the retry loop: after a grace for attempts already in flight, etcd sees no more handshakes.
    await sleep(CLOSE_QUIET_FROM_MS + 1_500);
    const afterClose = await rejectedConnections(mtls.logFile, closedAt);
    const lateAfterClose = afterClose.filter((entry) => entry.at >= closedAt + CLOSE_QUIET_FROM_MS);
    const lastMs = afterClose.length > 0 ? Math.max(...afterClose.map((entry) => entry.at)) - closedAt : 0;
    note(`after close: ${afterClose.length} rejected handshakes, the last ${lastMs} ms after it, ${lateAfterClose.length} of them ${CLOSE_QUIET_FROM_MS} ms or more after it`);
    expect(lateAfterClose).toEqual([]);
    // Last, so a missing classification does not hide the facts above.
    expect((error as NoLiveInstanceError).message).toContain('TLS failed');
  });

  securityCheck(3, 'etcd missing client certificate', async ({ note }) => {
    const namespace = uniqueNamespace('sec-nocert');
    const since = Date.now();
    const { error, ms } = await lookupFailure(namespace, { rootCertificate: mtls.ca.cert });
    note(`client with the right CA but no client certificate: getService failed after ${ms} ms (wait ${WAIT_MS} ms) with ${describeError(error)}`);
    const rejected = await rejectedConnections(mtls.logFile, since);
    note(`etcd logged ${rejected.length} rejected connections (${rejectionReasons(rejected)})`);
    expect(error).toBeInstanceOf(NoLiveInstanceError);
    expect(ms).toBeGreaterThanOrEqual(WAIT_MS - 100);
    expect(ms).toBeLessThan(WAIT_MS + 3_000);
    expect((error as NoLiveInstanceError).message).toContain('TLS failed');
    expect(rejectionReasons(rejected)).toContain('certificate');
  });
});

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return `${error.name}: "${error.message.slice(0, 400)}"`;
}

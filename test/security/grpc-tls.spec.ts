// gRPC over TLS between discovered instances. The channel target is `etcd:///greeter`, so the authority TLS checks
// the server certificate against is the service name, not the address found in etcd: certificates carry
// DNS:<service name>, or the client overrides the expected name.
import { ServerCredentials, credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { createTestPki, type CertificateAuthority, type CertifiedKey, type TestPki } from '../support/certs.js';
import { recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useEtcd } from '../support/use-etcd.js';
import { firstValueFrom } from 'rxjs';
import { within } from './deadline.js';
import { GREETER_CLIENT, callMany, failedCall, greeterOf, startCallingApp, startServingApp, type ServingApp } from './nest-apps.js';
import { securityCheck } from './security-check.js';

const logs = recordLogs();
const fx = useEtcd();
let pki: TestPki;
let ca: CertificateAuthority;

beforeAll(async () => {
  pki = await createTestPki();
  ca = await pki.createAuthority('grpc-ca');
});

afterAll(() => pki?.destroy());

function discovery(namespace: string) {
  return { etcd: { hosts: [fx.etcd.endpoint], requestTimeoutMs: 2_000 }, namespace, server: { ttlSeconds: 2, drainDelayMs: 0 } };
}

/** A greeter serving TLS only, with `cert`, registered under `namespace`. */
async function startTlsServer(namespace: string, cert: CertifiedKey): Promise<ServingApp> {
  const server = await startServingApp({
    discovery: discovery(namespace),
    credentials: ServerCredentials.createSsl(null, [{ private_key: cert.key, cert_chain: cert.cert }], false),
    logger: logs,
  });
  fx.cleanup.add(server.close);
  await within(server.registration.whenRegistered(), 10_000, 'registration of the TLS greeter');
  return server;
}

const describeCode = (code: number): string => `${status[code] ?? code}`;

describe('gRPC TLS to discovered instances', () => {
  securityCheck(9, 'gRPC TLS', async ({ note }) => {
    const namespace = uniqueNamespace('sec-grpc-tls');
    const server = await startTlsServer(namespace, await ca.issue('greeter-named', { altNames: ['DNS:greeter'] }));
    const caller = await startCallingApp(discovery(namespace), logs);
    fx.cleanup.add(caller.close);
    const address = server.registration.instances.map((instance) => (JSON.parse(instance.value) as { Addr: string }).Addr).join();

    const greeter = await greeterOf(caller, { ...GREETER_CLIENT, credentials: credentials.createSsl(ca.cert) });
    const replies = await callMany(greeter, 20);
    expect(Object.fromEntries(replies)).toEqual({ [server.registration.instanceId]: 20 });
    const reply = await firstValueFrom(greeter.sayHello({ name: 'authority' }));
    note(`server certificate with subjectAltName DNS:greeter, registered at ${address}; client credentials.createSsl(ca): 20 of 20 calls succeeded`);
    note(`the server saw the authority "${reply.address}" (target etcd:///greeter)`);
    expect(reply.address).toBe('greeter');

    // Control: the server really requires TLS, so the successes above went over it.
    const plaintext = await greeterOf(caller, { ...GREETER_CLIENT, timeoutMs: 3_000 });
    const refused = await failedCall(plaintext);
    note(`a plaintext client to the same instance failed with ${describeCode(refused.code)} "${refused.details}"`);
    expect(refused.code).toBe(status.UNAVAILABLE);
  });

  securityCheck(10, 'gRPC TLS wrong name', async ({ note }) => {
    const namespace = uniqueNamespace('sec-grpc-name');
    const server = await startTlsServer(namespace, await ca.issue('greeter-other-name', { altNames: ['DNS:other-service.internal'] }));
    const caller = await startCallingApp(discovery(namespace), logs);
    fx.cleanup.add(caller.close);

    const strict = await greeterOf(caller, { ...GREETER_CLIENT, credentials: credentials.createSsl(ca.cert), timeoutMs: 3_000 });
    const failure = await failedCall(strict);
    note(`certificate for DNS:other-service.internal only, trusted CA, target etcd:///greeter: the call failed with ${describeCode(failure.code)} "${failure.details}"`);
    expect(failure.code).toBe(status.UNAVAILABLE);
    // Node's own check, as grpc-js reports it: the name it wanted and the names the certificate holds.
    expect(failure.details).toMatch(/Hostname\/IP does not match certificate's altnames/);
    expect(failure.details).toContain('greeter');
    expect(failure.details).toContain('other-service.internal');

    const overridden = await greeterOf(caller, {
      ...GREETER_CLIENT,
      credentials: credentials.createSsl(ca.cert),
      channelOptions: { 'grpc.ssl_target_name_override': 'other-service.internal' },
    });
    const replies = await callMany(overridden, 10);
    expect(Object.fromEntries(replies)).toEqual({ [server.registration.instanceId]: 10 });
    note(`with channel option grpc.ssl_target_name_override = "other-service.internal": 10 of 10 calls succeeded`);
  });
});

// Whoever can write the prefix chooses where clients connect. The address policy keeps records pointing at no
// real destination or at link-local addresses (the cloud metadata endpoint) out of every client, and
// `allowedAddresses` narrows the destinations to what the operator names.
//
// Traffic stays on loopback even if the policy fails: records at non-loopback addresses are only ever listed
// (ClientFactory.instances()), never dialled, and a channel is opened only after the listing proved them absent.
import { firstValueFrom, timeout } from 'rxjs';
import { describe, expect } from 'vitest';
import { record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';
import { within } from './deadline.js';
import { callMany, greeterOf, startCallingApp, startServingApp, type CallingApp } from './nest-apps.js';
import { securityCheck } from './security-check.js';

const logs = recordLogs();
const fx = useEtcd();

function discovery(namespace: string) {
  return { etcd: { hosts: [fx.etcd.endpoint], requestTimeoutMs: 2_000 }, namespace, server: { ttlSeconds: 2, drainDelayMs: 0 } };
}

/** The client's current list of `service`, as addresses keyed by instance id. */
async function listed(caller: CallingApp, service: string): Promise<Record<string, string>> {
  const instances = await firstValueFrom(caller.clients.instances(service).pipe(timeout(3_000)));
  return Object.fromEntries(instances.map((instance) => [instance.id, instance.address]));
}

const policyWarnings = (from: number): string[] =>
  logs.lines.slice(from).filter((line) => line.level === 'warn' && line.message.includes('address policy')).map((line) => line.message);

/** Records no client may ever call, by instance id. */
const BAIT: Record<string, string> = {
  'cloud-metadata': '169.254.169.254:80',
  'ipv4-unspecified': '0.0.0.0:50051',
  'ipv6-unspecified': '[::]:50051',
  multicast: '224.0.0.251:5353',
  broadcast: '255.255.255.255:80',
  'ipv6-link-local': '[fe80::1]:80',
};

describe('address policy on discovered records', () => {
  securityCheck(11, 'address policy', async ({ note }) => {
    // Default policy: bait records beside one ordinary loopback record, listed only.
    const baitNamespace = uniqueNamespace('sec-bait');
    const baitPrefix = `${baitNamespace}/bait/`;
    for (const [id, address] of Object.entries(BAIT)) await fx.outsider.put(`${baitPrefix}${id}`).value(record(address));
    await fx.outsider.put(`${baitPrefix}ordinary`).value(record('127.0.0.1:50051'));
    const logFrom = logs.lines.length;
    const plain = await startCallingApp(discovery(baitNamespace), logs);
    fx.cleanup.add(plain.close);
    expect(await listed(plain, 'bait')).toEqual({ ordinary: '127.0.0.1:50051' });
    const warnings = await waitFor(() => {
      const seen = policyWarnings(logFrom);
      return Object.keys(BAIT).every((id) => seen.some((line) => line.includes(id))) ? seen : undefined;
    }, 3_000, { what: 'an "address policy" warning for every bait record' });
    note(`default policy: of ${Object.keys(BAIT).length + 1} records (${Object.values(BAIT).join(', ')} and 127.0.0.1:50051) the client listed only 127.0.0.1:50051`);
    note(`warnings: ${warnings.length}, e.g. "${warnings.find((line) => line.includes('cloud-metadata'))}"`);

    // Logged once: another change to the prefix re-evaluates the list without repeating the warnings.
    await fx.outsider.put(`${baitPrefix}second`).value(record('127.0.0.1:50052'));
    await waitFor(async () => Object.keys(await listed(plain, 'bait')).length === 2, 3_000, { what: 'the second ordinary record' });
    expect(policyWarnings(logFrom)).toHaveLength(warnings.length);
    note(`after another record was added: still ${warnings.length} warnings (one per refused key)`);

    // allowedAddresses ['127.0.0.0/8']: a real greeter and records outside the list.
    const namespace = uniqueNamespace('sec-allow');
    const server = await startServingApp({ discovery: { ...discovery(namespace), registration: { serviceName: 'greeter' } }, logger: logs });
    fx.cleanup.add(server.close);
    await within(server.registration.whenRegistered(), 10_000, 'registration of the greeter');
    const serverId = server.registration.instanceId;
    const serverAddress = (JSON.parse(server.registration.instances[0].value) as { Addr: string }).Addr;
    const port = serverAddress.slice(serverAddress.lastIndexOf(':') + 1);
    const outsideList = { 'named-host': `greeter-replica.invalid:${port}`, 'ipv6-loopback': `[::1]:${port}` };
    for (const [id, address] of Object.entries(outsideList)) await fx.outsider.put(`${namespace}/greeter/${id}`).value(record(address));

    const allowFrom = logs.lines.length;
    const strict = await startCallingApp({ ...discovery(namespace), allowedAddresses: ['127.0.0.0/8'] }, logs);
    fx.cleanup.add(strict.close);
    // Asserted before any channel exists, so a failing policy never makes the client dial these.
    expect(await listed(strict, 'greeter')).toEqual({ [serverId]: serverAddress });
    const refused = await waitFor(() => {
      const seen = policyWarnings(allowFrom);
      return Object.keys(outsideList).every((id) => seen.some((line) => line.includes(id))) ? seen : undefined;
    }, 3_000, { what: 'an "address policy" warning for each record outside allowedAddresses' });
    note(`allowedAddresses ['127.0.0.0/8']: records at ${Object.values(outsideList).join(' and ')} refused ("${refused[0]}"); listed only ${serverAddress}`);

    const replies = await callMany(await greeterOf(strict), 20);
    expect(Object.fromEntries(replies)).toEqual({ [serverId]: 20 });
    note(`20 of 20 calls routed to the 127.0.0.1 greeter`);
  });
});

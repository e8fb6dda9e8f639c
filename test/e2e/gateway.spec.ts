// The gateway demo app (HTTP -> ClientFactory -> greeter) against three greeter processes.
import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { getJson, startGateway, startGreeters, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { formatShares, sharesOf } from './load-analysis.js';

interface InstanceView {
  id: string;
  key: string;
  address: string;
  host: string;
  port: number;
  metadata: Record<string, unknown>;
}

describe('gateway app (etcd, TTL 2 s)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });

  it('lists the 3 greeters on /instances and spreads /burst?n=90 over them', async () => {
    const namespace = uniqueNamespace('gateway');
    const greeters = await startGreeters(processes, 3, { etcd: fx.etcd.endpoint, namespace });
    const gateway = await startGateway(processes, { etcd: fx.etcd.endpoint, namespace, port: await freePort() });
    const addresses = greeters.map((greeter) => greeter.address).sort();

    const instances = await getJson<InstanceView[]>(`${gateway.url}/instances`);
    expect(instances.map((instance) => instance.address).sort()).toEqual(addresses);
    expect(instances.map((instance) => instance.key).sort()).toEqual(greeters.map((greeter) => greeter.key).sort());
    for (const instance of instances) expect(instance.metadata).toMatchObject({ version: '1.0.0', zone: 'local', grpcServices: ['greeter.Greeter'] });

    const burst = await getJson<{ calls: number; failed: number; byInstance: Record<string, number> }>(`${gateway.url}/burst?n=90`);
    const shares = sharesOf(burst.byInstance, addresses, burst.calls);
    console.log(`[gateway] ${gateway.url}: /instances=${instances.length}; /burst?n=90 calls=${burst.calls} failed=${burst.failed} ${formatShares(shares)}`);
    expect(burst.calls).toBe(90);
    expect(burst.failed).toBe(0);
    expect(Object.keys(burst.byInstance).sort()).toEqual(addresses);
    for (const address of addresses) expect(shares[address], `share of ${address}`).toBeGreaterThanOrEqual(0.2);
  });
});

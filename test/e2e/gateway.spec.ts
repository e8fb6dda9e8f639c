// The gateway demo app (HTTP -> ClientFactory -> greeter) against three greeter processes.
import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { GATEWAY_MAIN, getJson, startGateway, startGreeters, uniqueNamespace, useProcesses } from '../support/processes.js';
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

  it('with METRICS_PORT, serves the discovery metrics to Prometheus: live instances of greeter = 2', async () => {
    const namespace = uniqueNamespace('gateway-metrics');
    await startGreeters(processes, 2, { etcd: fx.etcd.endpoint, namespace });
    const metricsPort = await freePort();
    const gateway = processes.spawnNode('gateway', GATEWAY_MAIN, {
      ETCD_HOSTS: fx.etcd.endpoint,
      DISCOVERY_NAMESPACE: namespace,
      PORT: String(await freePort()),
      METRICS_PORT: String(metricsPort),
    });
    const url = (await gateway.waitForOutput(/gateway listening on (http:\/\/\S+)/, 20_000))[1].replace('[::1]', '127.0.0.1').replace(/\/$/, '');
    // The gateway follows greeter from its first use.
    expect(await getJson<unknown[]>(`${url}/instances`)).toHaveLength(2);

    const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lines = scraped.split('\n').filter((line) => line.startsWith('etcd_discovery_instance_count'));
    console.log(`[gateway] /metrics: ${lines.join('; ')}`);
    expect(lines).toEqual([expect.stringMatching(/^etcd_discovery_instance_count\{etcd_discovery_service="greeter",.*\} 2$/)]);
  });
});

// Port 0 and the hybrid (HTTP + gRPC) mode of the greeter app.
import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { helloDirect } from '../support/greeter-proto.js';
import { describeExit, epochNow, getJson, listPrefix, startGreeter, startGreeters, startLoadClient, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { ms } from './load-analysis.js';
import { RegistryWatch } from './registry-watch.js';

describe('greeter app: port 0 and hybrid mode (etcd, TTL 2 s)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });

  it('registers the real bound port when started with GRPC_URL=127.0.0.1:0', async () => {
    const namespace = uniqueNamespace('port0');
    const greeters = await startGreeters(processes, 2, { etcd: fx.etcd.endpoint, namespace, grpcUrl: '127.0.0.1:0' });

    const ports = greeters.map((greeter) => greeter.port);
    console.log(`[port 0] registered addresses: ${greeters.map((greeter) => greeter.address).join(', ')}`);
    for (const greeter of greeters) {
      expect(greeter.record.Addr).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(greeter.port).toBeGreaterThan(0);
      const reply = await helloDirect(greeter.address);
      expect(reply.address).toBe(greeter.address);
      expect(reply.message).toBe('Hello, direct!');
    }
    expect(new Set(ports).size).toBe(2);
  });

  it('hybrid app: registers, GET /registration says so, serves gRPC through discovery, SIGTERM deregisters it', async () => {
    const namespace = uniqueNamespace('hybrid');
    const watch = await RegistryWatch.open(fx.etcd.endpoint, `${namespace}/greeter/`);
    try {
      const httpPort = await freePort();
      const greeter = await startGreeter(processes, { etcd: fx.etcd.endpoint, namespace, httpPort, name: 'greeter-hybrid' });

      const state = await getJson<{ instanceId: string; registered: boolean; keys: string[] }>(`${greeter.httpUrl}/registration`);
      expect(state.registered).toBe(true);
      expect(state.keys).toEqual([greeter.key]);
      expect(greeter.key.endsWith(`/${state.instanceId}`)).toBe(true);
      expect((await listPrefix(fx.etcd.endpoint, `${namespace}/greeter/`)).map((entry) => entry.key)).toEqual([greeter.key]);
      expect(greeter.port).not.toBe(httpPort);

      const client = await startLoadClient(processes, { etcd: fx.etcd.endpoint, namespace });
      const burst = await client.burst(40, 4);
      console.log(`[hybrid] ${greeter.address} (HTTP ${greeter.httpUrl}): calls=${burst.calls} failed=${burst.failed} byAddress=${JSON.stringify(burst.byAddress)}`);
      expect(burst).toMatchObject({ calls: 40, failed: 0, byAddress: { [greeter.address]: 40 } });
      await client.stop();

      const termAt = epochNow();
      greeter.proc.signal('SIGTERM');
      const exit = await greeter.proc.awaitExit(20_000);
      const deleted = await watch.waitForDelete(greeter.key, 1_000);
      console.log(`[hybrid] SIGTERM: key deleted after ${ms(deleted.at - termAt)}, process exited after ${ms(exit.at - termAt)} (${describeExit(exit)})`);
      expect(deleted.at).toBeLessThan(exit.at);
      expect(exit.forced).toBe(false);
      expect(await listPrefix(fx.etcd.endpoint, `${namespace}/greeter/`)).toEqual([]);
    } finally {
      await watch.close();
    }
  });
});

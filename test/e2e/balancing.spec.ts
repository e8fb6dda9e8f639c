// Balancing across separately started greeter processes, as seen by a separate client process.
import { beforeAll, describe, expect, it } from 'vitest';
import { epochNow, startGreeter, startGreeters, startLoadClient, uniqueNamespace, useProcesses, type Greeter, type LoadClient } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, sleepUntil } from '../support/wait.js';
import { countsBetween, firstServed, formatShares, ms, sharesOf } from './load-analysis.js';
import { RegistryWatch } from './registry-watch.js';

describe('balancing across greeter processes (etcd, TTL 2 s)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  const namespace = uniqueNamespace('balancing');
  let greeters: Greeter[];
  let client: LoadClient;

  // Three greeters and one client process, shared by the tests of this file (a 4th greeter is per test).
  beforeAll(async () => {
    greeters = await startGreeters(processes, 3, { etcd: fx.etcd.endpoint, namespace });
    client = await startLoadClient(processes, { etcd: fx.etcd.endpoint, namespace });
  }, 60_000);

  it('spreads 300 calls over 3 instances, each serving at least 25%', async () => {
    const result = await client.burst(300, 16);

    const addresses = greeters.map((greeter) => greeter.address);
    const shares = sharesOf(result.byAddress, addresses, result.calls);
    console.log(`[shares] calls=${result.calls} failed=${result.failed} ${formatShares(shares)} errors=${JSON.stringify(result.errors)}`);
    expect(result.calls).toBe(300);
    expect(result.failed).toBe(0);
    expect(Object.keys(result.byAddress).sort()).toEqual([...addresses].sort());
    for (const address of addresses) expect(shares[address], `share of ${address}`).toBeGreaterThanOrEqual(0.25);
  });

  it('routes calls to a 4th instance within 1 s of its key appearing in etcd, under steady load', async () => {
    const watch = await RegistryWatch.open(fx.etcd.endpoint, `${namespace}/greeter/`);
    try {
      await client.startLoad({ ratePerSec: 200, concurrency: 8, durationMs: 20_000 });
      await sleep(500);
      const fourth = await startGreeter(processes, { etcd: fx.etcd.endpoint, namespace, name: 'greeter-4th' });
      const put = await watch.waitForPut(fourth.key, 5_000);
      // Keep the load running past the 1 s budget, so a late first call would be seen as late.
      await sleepUntil(put.at + 1_500, epochNow);
      const load = await client.stopLoad();

      const first = firstServed(load.records, fourth.address);
      const delay = first === undefined ? Infinity : first - put.at;
      const after = countsBetween(load.records, put.at, load.stopped + 60_000);
      const afterTotal = Object.values(after).reduce((sum, count) => sum + count, 0);
      const sharesAfter = sharesOf(after, [...greeters.map((greeter) => greeter.address), fourth.address], afterTotal);
      console.log(
        `[join] calls=${load.calls} failed=${load.failed}; key put seen at +${ms(put.at - load.started)} into the load; ` +
          `first call served by the 4th: ${first === undefined ? 'never' : `${ms(delay)} after its key appeared`}; ` +
          `shares of the ${afterTotal} calls after the put: ${formatShares(sharesAfter)}`,
      );
      expect(load.failed).toBe(0);
      expect(first, 'the 4th instance served no call').toBeDefined();
      expect(delay).toBeLessThanOrEqual(1_000);
      // It takes a fair part of the load from then on, not one stray call.
      expect(sharesAfter[fourth.address]).toBeGreaterThan(0.1);
    } finally {
      await watch.close();
    }
  });
});

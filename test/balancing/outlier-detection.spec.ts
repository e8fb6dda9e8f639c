// grpc-js's outlier_detection wrapped around our policies, against real grpc-js servers fed through an
// in-memory instance list (no etcd). grpc-js 1.14 counts every non-OK status a call ends with,
// server-returned ones included, so a server answering INTERNAL is ejected by failure percentage.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { LoadBalancingPolicy } from '../../libs/etcd-discovery/src/client/service-config.js';
import type { DiscoveredClientOptions } from '../../libs/etcd-discovery/src/client/discovered-client-options.interface.js';
import { InvalidDiscoveryOptionsError } from '../../libs/etcd-discovery/src/options/invalid-options.error.js';
import { balancingFixture, firstReply, instanceOf, runLoad, type GreeterClient } from '../support/grpc-servers.js';

const fx = balancingFixture();

const OUTLIER_DETECTION = {
  intervalMs: 500,
  baseEjectionTimeMs: 5_000,
  failurePercentageEjection: { threshold: 50, requestVolume: 20, minimumHosts: 2 },
};

describe('outlierDetection with real servers', () => {
  it.each<[LoadBalancingPolicy]>([['round_robin'], ['metadata_weighted'], ['p2c_ewma']])(
    'wrapping %s: a server answering INTERNAL is ejected (< 10% of calls in the second after the first 1.5 s)',
    async (policy) => {
      const [good1, good2] = await fx.startServers(2);
      const [bad] = await fx.startServers(1, { code: Status.INTERNAL });
      fx.source().set([good1, good2, bad].map((server) => instanceOf(server)));
      const client = fx.client({ loadBalancing: policy, outlierDetection: OUTLIER_DETECTION });
      await firstReply(client);

      const start = performance.now();
      const result = await runLoad(client, { concurrency: 8, durationMs: 3_000 });
      const windows: string[] = [];
      for (let from = start; from + 250 <= start + 3_000; from += 250) {
        const all = [good1, good2, bad].reduce((sum, server) => sum + server.receivedBetween(from, from + 250), 0);
        windows.push(`${bad.receivedBetween(from, from + 250)}/${all}`);
      }
      const measuredFrom = start + 1_500;
      const badInSecond = bad.receivedBetween(measuredFrom, measuredFrom + 1_000);
      const allInSecond = [good1, good2, bad].reduce((sum, server) => sum + server.receivedBetween(measuredFrom, measuredFrom + 1_000), 0);
      const share = (badInSecond * 100) / allInSecond;
      console.log(
        `outlier_detection(${policy}) with an INTERNAL server: bad/all per 250 ms ${windows.join(' ')};` +
          ` ${share.toFixed(2)}% in [1.5 s, 2.5 s); client failures ${JSON.stringify(result.failures)} of ${result.outcomes.length}`,
      );
      expect(allInSecond).toBeGreaterThan(100);
      expect(share).toBeLessThan(10);
      // Before the first interval ends it is not ejected yet: it did get calls (the test is not vacuous).
      expect(bad.receivedBetween(start, start + 500)).toBeGreaterThan(0);
    },
  );

  it('without outlier detection round robin keeps sending the INTERNAL server its third', async () => {
    const [good1, good2] = await fx.startServers(2);
    const [bad] = await fx.startServers(1, { code: Status.INTERNAL });
    fx.source().set([good1, good2, bad].map((server) => instanceOf(server)));
    const client = fx.client({ loadBalancing: 'round_robin' });
    await firstReply(client);
    const result = await runLoad(client, { concurrency: 8, calls: 1_500 });
    const share = ((result.failures.INTERNAL ?? 0) * 100) / result.outcomes.length;
    console.log(`round_robin alone with an INTERNAL server: ${share.toFixed(2)}% of calls failed INTERNAL`);
    expect(Math.abs(share - 100 / 3)).toBeLessThanOrEqual(5);
  });

  it.each<[string, Partial<DiscoveredClientOptions>]>([
    ['threshold 150 %', { loadBalancing: 'round_robin', outlierDetection: { failurePercentageEjection: { threshold: 150 } } }],
    ['enforcement 101 %', { loadBalancing: 'p2c_ewma', outlierDetection: { successRateEjection: { enforcementPercentage: 101 } } }],
    ['around pick_first', { loadBalancing: 'pick_first', outlierDetection: { failurePercentageEjection: {} } }],
  ])('an outlier config grpc-js refuses (%s) fails at createClient instead of silently becoming plain pick_first', async (_label, options) => {
    const servers = await fx.startServers(3);
    fx.source().set(servers.map((server) => instanceOf(server)));
    let client: GreeterClient;
    try {
      client = fx.client(options);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
      return;
    }
    await firstReply(client);
    const result = await runLoad(client, { concurrency: 8, calls: 300 });
    console.log(`accepted outlier config ${JSON.stringify(options)}: calls per server ${JSON.stringify([...result.byPort.values()])}`);
    if (options.loadBalancing === 'pick_first') {
      expect.fail('outlier detection cannot wrap pick_first in grpc-js: the option must be refused, not ignored');
    }
    // Accepted: then it must balance as asked, not send everything to one server.
    expect(result.byPort.size).toBe(3);
  });
});

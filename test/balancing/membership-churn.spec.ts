// Membership changes under load lose no call, for every policy: real grpc-js servers, an in-memory
// instance list changed every 200 ms for 3 s (no etcd). Removed instances keep running, so any
// failure is the client's doing.
import { describe, expect, it } from 'vitest';
import type { LoadBalancingPolicy } from '../../libs/etcd-discovery/src/client/service-config.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { backgroundLoad, balancingFixture, firstReply, instanceOf, summarize } from '../support/grpc-servers.js';
import { seededRandom } from '../support/seeded-random.js';
import { sleep } from '../support/wait.js';

const fx = balancingFixture();

describe('membership changes under load', () => {
  it.each<[LoadBalancingPolicy]>([['round_robin'], ['p2c_ewma'], ['metadata_weighted']])(
    '%s: 16 callers, instances added and removed every 200 ms for 3 s, no call lost',
    async (policy) => {
      const servers = await fx.startServers(5);
      const instances = servers.map((server, i) => instanceOf(server, { weight: 1 + (i % 3) }));
      let listed: ServiceInstance[] = instances.slice(0, 3);
      fx.source().set(listed);
      const client = fx.client({ loadBalancing: policy });
      await firstReply(client);

      const load = backgroundLoad(client, 16);

      const random = seededRandom(policy.length);
      const sizes: number[] = [];
      for (let step = 0; step < 15; step++) {
        await sleep(200);
        const absent = instances.filter((instance) => !listed.includes(instance));
        const next = [...listed];
        // Remove one (never the last), add one, or both; sometimes swap the whole list.
        const move = random();
        if (move < 0.15 && absent.length > 0) {
          next.splice(0, next.length, ...absent);
        } else {
          if (move < 0.6 && next.length > 1) next.splice(Math.floor(random() * next.length), 1);
          if (move >= 0.4 && absent.length > 0) next.push(absent[Math.floor(random() * absent.length)]);
        }
        listed = next;
        sizes.push(listed.length);
        fx.source().set(listed);
      }
      // Settle on a final list and check that only it is called.
      const final = instances.slice(3);
      fx.source().set(final);
      await sleep(150);
      const settledAt = performance.now();
      await sleep(300);
      const outcomes = await load.stop();

      const result = summarize(outcomes);
      const servedBy = servers.map((server) => result.byPort.get(server.port) ?? 0);
      const lateToRemoved = servers
        .filter((server) => !final.some((instance) => instance.port === server.port))
        .reduce((sum, server) => sum + server.receivedBetween(settledAt, Infinity), 0);
      console.log(
        `${policy} churn: ${outcomes.length} calls, failures ${JSON.stringify(result.failures)}, list sizes ${sizes.join(',')},` +
          ` served ${servedBy.join('/')}, calls to removed servers after settling ${lateToRemoved}`,
      );
      expect(result.failed).toBe(0);
      expect(outcomes.length).toBeGreaterThan(1_000);
      expect(servedBy.every((count) => count > 0)).toBe(true);
      expect(lateToRemoved).toBe(0);
    },
  );
});

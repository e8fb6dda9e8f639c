// Subsetting against real grpc-js servers fed through an in-memory instance list: a client connects to exactly
// `subsetSize` of 12 servers (counted from the servers' open connections in grpc-js channelz, and from the servers
// that received calls), an instance leaving its subset is replaced under load without a failed call, and a request
// route gets a subset of its own instances.
import { describe, expect, it } from 'vitest';
import { subsetOf } from '../../libs/etcd-discovery/src/balancing/subset.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { serverConnectionsByPort } from '../support/channelz.js';
import { backgroundLoad, balancingFixture, callWithMetadata, firstReply, type GreeterServer, instanceOf, runLoad, summarize } from '../support/grpc-servers.js';
import { sleep, waitFor } from '../support/wait.js';

const fx = balancingFixture();

const portsOf = (instances: readonly ServiceInstance[]): number[] => instances.map((instance) => instance.port).sort();

/** Ports of `servers` holding at least one open client connection, and the most connections any one holds. */
async function connected(servers: readonly GreeterServer[]): Promise<{ ports: number[]; most: number }> {
  const byPort = await serverConnectionsByPort();
  const counts = servers.map((server) => [server.port, byPort.get(server.port) ?? 0] as const);
  return { ports: counts.filter(([, count]) => count > 0).map(([port]) => port).sort(), most: Math.max(...counts.map(([, count]) => count)) };
}

const servedPorts = (servers: readonly GreeterServer[], since: Map<number, number>): number[] =>
  servers.filter((server) => server.calls > (since.get(server.port) ?? 0)).map((server) => server.port).sort();

const callCounts = (servers: readonly GreeterServer[]): Map<number, number> => new Map(servers.map((server) => [server.port, server.calls]));

describe('subsetting with real servers', () => {
  it('with 12 servers and subsetSize 4, connects to and calls exactly the 4 its subsetKey picks', async () => {
    const servers = await fx.startServers(12);
    const instances = servers.map((server) => instanceOf(server));
    fx.source().set(instances);
    const client = fx.client({ subsetSize: 4, subsetKey: 'pod-a' });
    await firstReply(client);
    const result = await runLoad(client, { concurrency: 8, calls: 600 });
    expect(result.failed).toBe(0);

    const expected = portsOf(subsetOf(instances, 4, 'pod-a'));
    expect([...result.byPort.keys()].sort()).toEqual(expected);
    // Real connections: one per subset server, none to the other 8.
    const open = await connected(servers);
    expect(open.ports).toEqual(expected);
    expect(open.most).toBe(1);
    // Round robin within the subset: about 150 calls each.
    for (const count of result.byPort.values()) expect(count).toBeGreaterThan(100);
  });

  it('replaces an instance that leaves the subset under load: 0 failed calls, the next-ranked instance takes its place', async () => {
    const servers = await fx.startServers(12);
    const instances = servers.map((server) => instanceOf(server));
    fx.source().set(instances);
    const client = fx.client({ subsetSize: 4, subsetKey: 'pod-b' });
    await firstReply(client);
    const before = subsetOf(instances, 4, 'pod-b');
    const leaving = before[1];
    const rest = instances.filter((instance) => instance !== leaving);
    const after = subsetOf(rest, 4, 'pod-b');
    const replacement = after.find((instance) => !before.includes(instance))!;
    expect(after.filter((instance) => !before.includes(instance))).toHaveLength(1);

    const load = backgroundLoad(client, 8);
    await sleep(300);
    // The leaver keeps running: a failed call would be the client's doing.
    fx.source().set(rest);
    const replacementServer = servers.find((server) => server.port === replacement.port)!;
    await waitFor(() => replacementServer.calls > 0, 5_000, { what: 'the replacement to take calls' });
    const since = callCounts(servers);
    await sleep(500);
    const outcomes = await load.stop();
    expect(summarize(outcomes).failures).toEqual({});
    expect(outcomes.length).toBeGreaterThan(200);
    // After the change, calls reach exactly the new subset.
    expect(servedPorts(servers, since)).toEqual(portsOf(after));
    // Connections: the new subset's, plus at most the leaver's, which grpc-js's subchannel pool closes on its
    // next sweep (every 10 s), not at once.
    const open = await connected(servers);
    expect(open.ports.filter((port) => port !== leaving.port)).toEqual(portsOf(after));
  });

  it('gives a request route its own subset among the instances it selects', async () => {
    const servers = await fx.startServers(12);
    const instances = servers.map((server, i) => instanceOf(server, { canary: i < 6 }));
    fx.source().set(instances);
    const route = { header: 'x-canary', equals: 'true', select: { metadata: { canary: true } } };
    const client = fx.client({ subsetSize: 2, subsetKey: 'pod-c', routes: [route] });
    await firstReply(client);

    const canaries = instances.filter((instance) => instance.metadata.canary === true);
    const routeSubset = portsOf(subsetOf(canaries, 2, 'pod-c'));
    const whole = portsOf(subsetOf(instances, 2, 'pod-c'));
    const canaryPorts = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const outcome = await callWithMetadata(client, { 'x-canary': 'true' });
      expect(outcome.ok).toBe(true);
      if (outcome.ok) canaryPorts.add(outcome.port);
    }
    // Canary calls: exactly the route's subset of the 6 canaries.
    expect([...canaryPorts].sort()).toEqual(routeSubset);
    // Connections: the client's subset of all 12 plus the route's, nothing else (2 to 4 servers).
    const open = await connected(servers);
    expect(open.ports).toEqual([...new Set([...whole, ...routeSubset])].sort());
    expect(open.most).toBe(1);
  });
});

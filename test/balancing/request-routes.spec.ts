// Per-request routing from call metadata against real grpc-js servers fed through an in-memory instance list:
// canary calls reach only canaries under every policy of ours, a default route keeps other calls off them, the
// fallback is honoured, and membership changes under load lose no call and misroute none.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { LoadBalancingPolicy } from '../../libs/etcd-discovery/src/client/service-config.js';
import { balancingFixture, type CallOutcome, callWithMetadata, firstReply, instanceOf, summarize } from '../support/grpc-servers.js';
import { sleep } from '../support/wait.js';

const fx = balancingFixture();

const CANARY_ROUTES = [
  { header: 'x-canary', equals: 'true', select: { metadata: { canary: true } } },
  // Every other call: stable instances only.
  { select: { metadata: { canary: false } }, fallback: 'all' as const },
];

describe('per-request routing with real servers', () => {
  it.each<[LoadBalancingPolicy, Record<string, unknown>]>([
    ['round_robin', {}],
    ['p2c_ewma', {}],
    ['metadata_weighted', {}],
    ['consistent_hash', { consistentHash: { metadataKey: 'x-user' } }],
  ])('%s: canary calls reach only canaries, other calls only stable instances, 0 misroutes in 800 calls', async (policy, extra) => {
    const servers = await fx.startServers(4);
    const [canary1, canary2, stable1, stable2] = servers;
    fx.source().set([
      instanceOf(canary1, { canary: true }),
      instanceOf(canary2, { canary: true }),
      instanceOf(stable1, { canary: false }),
      instanceOf(stable2, { canary: false }),
    ]);
    const client = fx.client({ loadBalancing: policy, routes: CANARY_ROUTES, ...extra });
    await firstReply(client);
    const canaryPorts = new Set([canary1.port, canary2.port]);

    const outcomes: { canary: boolean; outcome: CallOutcome }[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = 0; i < 100; i++) {
          const canary = (i + worker) % 2 === 0;
          const outcome = await callWithMetadata(client, { ...(canary ? { 'x-canary': 'true' } : {}), 'x-user': `u${i}` });
          outcomes.push({ canary, outcome });
        }
      }),
    );
    const failed = outcomes.filter(({ outcome }) => !outcome.ok);
    const misrouted = outcomes.filter(({ canary, outcome }) => outcome.ok && canaryPorts.has(outcome.port) !== canary);
    expect(failed).toEqual([]);
    expect(misrouted).toHaveLength(0);
    // Both canaries and both stable instances served (the policy still spreads within a route).
    for (const server of servers) expect(server.calls).toBeGreaterThan(0);
  });

  it('with fallback "fail" a route with no live instance fails its calls with UNAVAILABLE naming the route; other calls go on', async () => {
    const [stable] = await fx.startServers(1);
    fx.source().set([instanceOf(stable, { canary: false })]);
    const client = fx.client({ routes: [{ header: 'x-canary', equals: ['true', 'yes'], select: { metadata: { canary: true } } }] });
    await firstReply(client);
    const canaryCall = await callWithMetadata(client, { 'x-canary': 'yes' });
    expect(canaryCall).toMatchObject({ ok: false, code: Status.UNAVAILABLE });
    expect(!canaryCall.ok && canaryCall.details).toMatch(/no live instance matches route 0 \(x-canary=true\|yes -> \{"metadata":\{"canary":true\}\}\)/);
    expect(await callWithMetadata(client, { 'x-canary': 'no' })).toMatchObject({ ok: true, port: stable.port });
  });

  it('with fallback "all" calls of a route with no live instance go to every instance', async () => {
    const [stable] = await fx.startServers(1);
    fx.source().set([instanceOf(stable, { canary: false })]);
    const client = fx.client({ routes: [{ header: 'x-canary', select: { metadata: { canary: true } }, fallback: 'all' }] });
    await firstReply(client);
    expect(await callWithMetadata(client, { 'x-canary': 'anything' })).toMatchObject({ ok: true, port: stable.port });
  });

  it('composes with select: routes choose among the instances select allows', async () => {
    const [v1Canary, v2Canary, v2Stable] = await fx.startServers(3);
    fx.source().set([
      instanceOf(v1Canary, { canary: true, version: '1.0.0' }),
      instanceOf(v2Canary, { canary: true, version: '2.0.0' }),
      instanceOf(v2Stable, { canary: false, version: '2.0.0' }),
    ]);
    const client = fx.client({ select: { version: '^2.0.0' }, routes: [CANARY_ROUTES[0]] });
    await firstReply(client);
    for (let i = 0; i < 20; i++) expect(await callWithMetadata(client, { 'x-canary': 'true' })).toMatchObject({ ok: true, port: v2Canary.port });
    expect(v1Canary.calls).toBe(0);
  });

  it('canaries joining and leaving under load: 0 failed calls, 0 misroutes', async () => {
    const servers = await fx.startServers(5);
    const canaries = servers.slice(0, 3).map((server) => instanceOf(server, { canary: true }));
    const stable = servers.slice(3).map((server) => instanceOf(server, { canary: false }));
    const canaryPorts = new Set(servers.slice(0, 3).map((server) => server.port));
    fx.source().set([canaries[0], ...stable]);
    const client = fx.client({ loadBalancing: 'p2c_ewma', routes: CANARY_ROUTES });
    await firstReply(client);

    let running = true;
    const outcomes: { canary: boolean; outcome: CallOutcome }[] = [];
    const workers = Array.from({ length: 8 }, async (_, worker) => {
      for (let i = 0; running; i++) {
        const canary = (i + worker) % 3 === 0;
        outcomes.push({ canary, outcome: await callWithMetadata(client, canary ? { 'x-canary': 'true' } : {}) });
      }
    });
    // One canary always listed, the others come and go; removed servers keep running, so failures would be the client's.
    for (let step = 0; step < 10; step++) {
      await sleep(150);
      fx.source().set([canaries[step % 3], ...(step % 2 === 0 ? canaries.slice(1) : []), ...stable]);
    }
    running = false;
    await Promise.all(workers);
    const result = summarize(outcomes.map(({ outcome }) => outcome));
    expect(result.failures).toEqual({});
    expect(outcomes.filter(({ canary, outcome }) => outcome.ok && canaryPorts.has(outcome.port) !== canary)).toHaveLength(0);
    expect(outcomes.length).toBeGreaterThan(200);
  });
});

// Routing before balancing (`select`) against real grpc-js servers fed through an in-memory
// instance list (no etcd): preferred zone with fallback and return, selectors that exclude, and a
// selector matching nothing failing fast with a message naming the service and the selector.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { InstanceSelector } from '../../libs/etcd-discovery/src/balancing/instance-routing.js';
import { backgroundLoad, balancingFixture, callOnce, firstReply, instanceOf, runLoad, summarize } from '../support/grpc-servers.js';
import { sleep } from '../support/wait.js';

const fx = balancingFixture();

describe('preferred zone with real servers', () => {
  it('calls only the zone, falls back to other zones with no failure, and comes back within 1 s', async () => {
    const [zoneA, otherB, otherC] = await fx.startServers(3);
    const a = instanceOf(zoneA, { zone: 'a' });
    const others = [instanceOf(otherB, { zone: 'b' }), instanceOf(otherC, { zone: 'c' })];
    fx.source().set([a, ...others]);
    const client = fx.client({ select: { preferredZone: 'a' } });
    await firstReply(client);

    const inZone = await runLoad(client, { concurrency: 8, calls: 1_000 });
    console.log(`preferred zone a: ${inZone.byPort.get(zoneA.port) ?? 0} of 1000 calls in zone`);
    expect(inZone.failed).toBe(0);
    expect(inZone.byPort.get(zoneA.port)).toBe(1_000);

    const load = backgroundLoad(client, 8);
    await sleep(300);
    const removedAt = performance.now();
    fx.source().set(others); // the zone's only instance leaves the list (its server keeps running)
    await sleep(700);
    const backAt = performance.now();
    fx.source().set([...others, a]);
    await sleep(1_500);
    const outcomes = await load.stop();

    const all = summarize(outcomes);
    const during = outcomes.filter((o) => o.at > removedAt + 50 && o.at < backAt);
    const duringOther = during.filter((o) => o.ok && o.port !== zoneA.port).length;
    const lastOutside = Math.max(...outcomes.filter((o) => o.ok && o.port !== zoneA.port && o.at > backAt).map((o) => o.at), backAt);
    const afterReturn = outcomes.filter((o) => o.at > backAt + 1_000);
    console.log(
      `zone fallback: ${outcomes.length} calls, failures ${JSON.stringify(all.failures)}; while zone empty ${duringOther}/${during.length} to other zones;` +
        ` calls back in zone ${(lastOutside - backAt).toFixed(0)} ms after it returned; after +1 s ${afterReturn.filter((o) => o.ok && o.port === zoneA.port).length}/${afterReturn.length} in zone`,
    );
    expect(all.failed).toBe(0);
    expect(during.length).toBeGreaterThan(50);
    expect(duringOther).toBe(during.length);
    expect(lastOutside - backAt).toBeLessThan(1_000);
    expect(afterReturn.length).toBeGreaterThan(50);
    expect(afterReturn.every((o) => o.ok && o.port === zoneA.port)).toBe(true);
  });
});

describe('selectors with real servers', () => {
  it.each<[string, InstanceSelector]>([
    ['a semver range', { version: '^2.0.0' }],
    ['metadata', { metadata: { track: 'stable' } }],
  ])('never routes to an instance excluded by %s over 1,000 calls', async (_label, select) => {
    const [old, new1, new2] = await fx.startServers(3);
    fx.source().set([
      instanceOf(old, { version: '1.9.0', track: 'canary' }),
      instanceOf(new1, { version: '2.0.0', track: 'stable' }),
      instanceOf(new2, { version: '2.4.1', track: 'stable' }),
    ]);
    const client = fx.client({ select });
    await firstReply(client);
    const result = await runLoad(client, { concurrency: 8, calls: 1_000 });
    console.log(`selector ${JSON.stringify(select)}: excluded got ${old.calls}, others ${result.byPort.get(new1.port)} / ${result.byPort.get(new2.port)}`);
    expect(result.failed).toBe(0);
    expect(old.calls).toBe(0);
    expect(result.byPort.get(new1.port)).toBeGreaterThan(300);
    expect(result.byPort.get(new2.port)).toBeGreaterThan(300);
  });

  it.each<[string, InstanceSelector, string]>([
    ['a semver range', { version: '^2.0.0' }, '^2.0.0'],
    ['metadata', { metadata: { track: 'gold' } }, 'gold'],
  ])('fails calls fast with UNAVAILABLE naming the service and %s when the selector matches nothing', async (_label, select, shown) => {
    const servers = await fx.startServers(2);
    fx.source().set(servers.map((server) => instanceOf(server, { version: '1.2.0', track: 'stable' })));
    const client = fx.client({ select });
    await sleep(50); // let the resolver deliver the (routed) list
    for (let i = 0; i < 3; i++) {
      const outcome = await callOnce(client, 5_000);
      console.log(`selector matching nothing: ${outcome.ok ? 'OK?!' : `${Status[outcome.code]} in ${outcome.ms.toFixed(1)} ms: ${outcome.details}`}`);
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(outcome.code).toBe(Status.UNAVAILABLE);
      expect(outcome.ms).toBeLessThan(1_000);
      expect(outcome.details).toContain('greeter');
      expect(outcome.details).toContain(shown);
    }
    expect(servers.every((server) => server.calls === 0)).toBe(true);
  });

  it('fails fast on a channel whose very first resolution matches nothing (no warm-up pause)', async () => {
    const servers = await fx.startServers(1);
    fx.source().set(servers.map((server) => instanceOf(server, { version: '1.2.0' })));
    const outcome = await callOnce(fx.client({ select: { version: '>=3' } }), 5_000);
    console.log(`first call, nothing matching: ${outcome.ok ? 'OK?!' : `${Status[outcome.code]} in ${outcome.ms.toFixed(1)} ms`}`);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.code).toBe(Status.UNAVAILABLE);
    expect(outcome.ms).toBeLessThan(1_000);
    expect(outcome.details).toContain('>=3');
  });
});

// metadata_weighted against real grpc-js servers fed through an in-memory instance list (no etcd):
// shares follow Metadata.weight, weight 0 is a standby, a bad weight counts as 1 and is logged once.
import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { balancingFixture, callOnce, instanceOf, runLoad, sharePercent, warmUp } from '../support/grpc-servers.js';
import { sleep, waitFor } from '../support/wait.js';

const fx = balancingFixture();

describe('metadata_weighted with real servers', () => {
  afterEach(() => vi.restoreAllMocks());

  it('splits 6,000 calls 1:2:3 by Metadata.weight (each share within 3 points)', async () => {
    const [a, b, c] = await fx.startServers(3);
    fx.source().set([instanceOf(a, { weight: 1 }), instanceOf(b, { weight: 2 }), instanceOf(c, { weight: 3 })]);
    const client = fx.client({ loadBalancing: 'metadata_weighted' });
    await warmUp(client, [a, b, c]);

    const result = await runLoad(client, { concurrency: 16, calls: 6_000 });
    const shares = [a, b, c].map((server) => sharePercent(result, server.port));
    console.log(`metadata_weighted 1:2:3 over 6000 calls: ${shares.map((s) => s.toFixed(2)).join('% / ')}% (want 16.67 / 33.33 / 50), failed ${result.failed}`);
    expect(result.failed).toBe(0);
    expect(Math.abs(shares[0] - 100 / 6)).toBeLessThanOrEqual(3);
    expect(Math.abs(shares[1] - 200 / 6)).toBeLessThanOrEqual(3);
    expect(Math.abs(shares[2] - 300 / 6)).toBeLessThanOrEqual(3);
  });

  it('gives a weight-0 standby no call while others are up, and every call when it is the only one up', async () => {
    const [a, b, standby] = await fx.startServers(3);
    const all = [instanceOf(a, { weight: 1 }), instanceOf(b, { weight: 2 }), instanceOf(standby, { weight: 0 })];
    fx.source().set(all);
    const client = fx.client({ loadBalancing: 'metadata_weighted' });
    await warmUp(client, [a, b]);
    // The standby's connection is up too (the policy keeps every endpoint connected), so its absence
    // below is the policy's choice, not a missing connection.
    await sleep(200);

    const before = standby.calls;
    const withOthers = await runLoad(client, { concurrency: 16, calls: 2_000 });
    console.log(`standby while others are up: ${withOthers.byPort.get(standby.port) ?? 0} of 2000 (a ${withOthers.byPort.get(a.port)}, b ${withOthers.byPort.get(b.port)})`);
    expect(withOthers.failed).toBe(0);
    expect(withOthers.byPort.get(standby.port) ?? 0).toBe(0);
    expect(standby.calls).toBe(before);

    // The others' servers stop (still listed): once their connections are seen gone, the standby takes over.
    a.forceShutdown();
    b.forceShutdown();
    await waitFor(async () => {
      const outcome = await callOnce(client);
      return outcome.ok && outcome.port === standby.port;
    }, 5_000, { what: 'the standby to answer' });
    const alone = await runLoad(client, { concurrency: 16, calls: 1_000 });
    console.log(`standby with the others stopped but listed: ${alone.byPort.get(standby.port) ?? 0} of 1000, failures ${JSON.stringify(alone.failures)}`);
    expect(alone.failed).toBe(0);
    expect(alone.byPort.get(standby.port)).toBe(1_000);

    // And removed from the list.
    fx.source().set([all[2]]);
    await sleep(50);
    const removed = await runLoad(client, { concurrency: 16, calls: 1_000 });
    console.log(`standby with the others removed: ${removed.byPort.get(standby.port) ?? 0} of 1000, failures ${JSON.stringify(removed.failures)}`);
    expect(removed.failed).toBe(0);
    expect(removed.byPort.get(standby.port)).toBe(1_000);
  });

  it('counts a bad weight as 1 and logs it once per instance, across membership updates', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [bad, heavy, extra] = await fx.startServers(3);
    const base = [instanceOf(bad, { weight: 'heavy' }), instanceOf(heavy, { weight: 3 })];
    fx.source().set(base);
    const client = fx.client({ loadBalancing: 'metadata_weighted' });
    await warmUp(client, [bad, heavy]);
    // Membership updates rebuild the picker: the warning must not repeat.
    for (let i = 0; i < 4; i++) {
      fx.source().set(i % 2 === 0 ? [...base, instanceOf(extra, { weight: 0 })] : base);
      await sleep(30);
    }
    fx.source().set(base);
    await sleep(30);

    const result = await runLoad(client, { concurrency: 16, calls: 4_000 });
    const share = sharePercent(result, bad.port);
    console.log(`bad weight counted as 1 against 3: ${share.toFixed(2)}% (want 25)`);
    expect(result.failed).toBe(0);
    expect(Math.abs(share - 25)).toBeLessThanOrEqual(3);
    const aboutBad = warn.mock.calls.filter(([message]) => String(message).includes(`127.0.0.1:${bad.port}`));
    expect(aboutBad).toHaveLength(1);
    expect(String(aboutBad[0][0])).toContain('"heavy"');
  });
});

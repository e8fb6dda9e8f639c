// Losing one replica under continuous load: a graceful SIGTERM and a crash (kill -9).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExit, epochNow, listPrefix, startGreeter, startGreeters, startLoadClient, uniqueNamespace, useProcesses, type Greeter, type LoadClient } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, sleepUntil } from '../support/wait.js';
import { countsBetween, failures, formatShares, lastServed, ms, served, sharesOf } from './load-analysis.js';
import { RegistryWatch } from './registry-watch.js';

const TTL_SECONDS = 2;
const LOAD = { ratePerSec: 200, concurrency: 8, delayMs: 5, durationMs: 15_000 };

describe('one replica leaves under load (etcd, TTL 2 s)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  const namespace = uniqueNamespace('shutdown');
  let survivors: Greeter[];
  let client: LoadClient;
  let watch: RegistryWatch;

  // Two greeters that stay, and the client, shared by the tests; each test adds the replica it ends.
  beforeAll(async () => {
    survivors = await startGreeters(processes, 2, { etcd: fx.etcd.endpoint, namespace, ttlSeconds: TTL_SECONDS });
    client = await startLoadClient(processes, { etcd: fx.etcd.endpoint, namespace });
    watch = await RegistryWatch.open(fx.etcd.endpoint, `${namespace}/greeter/`);
  }, 60_000);
  // After hooks run last-registered first: the watch closes before useEtcd's hook stops etcd.
  afterAll(() => watch?.close());

  it('SIGTERM to one replica under ~200 calls/s: 0 failed calls, key removed before the process exits', async () => {
    const victim = await startGreeter(processes, { etcd: fx.etcd.endpoint, namespace, ttlSeconds: TTL_SECONDS, name: 'greeter-sigterm' });
    await client.burst(30, 6); // every client subchannel connected before the clock starts

    const { started } = await client.startLoad(LOAD);
    await sleep(1_000);
    const termAt = epochNow();
    victim.proc.signal('SIGTERM');
    const deleted = watch.waitForDelete(victim.key, 10_000);
    const exit = await victim.proc.awaitExit(20_000);
    const deletedAt = (await deleted).at;
    await sleepUntil(started + 4_000, epochNow);
    const load = await client.stopLoad();

    const addresses = [...survivors.map((greeter) => greeter.address), victim.address];
    const last = lastServed(load.records, victim.address);
    const startedAfterDelete = served(load.records, victim.address).filter((record) => record.s > deletedAt + 50).length;
    // Once the removal has had time to reach the client, no new call may go to the leaving replica.
    const routedLate = served(load.records, victim.address).filter((record) => record.s > deletedAt + 500);
    console.log(
      `[sigterm] calls=${load.calls} failed=${load.failed} over ${ms(load.stopped - load.started)}; ` +
        `key deleted ${ms(deletedAt - termAt)} after SIGTERM, process exited ${ms(exit.at - termAt)} after SIGTERM (${describeExit(exit)}); ` +
        `victim served ${served(load.records, victim.address).length} calls, the last ${last === undefined ? 'never' : ms(last - termAt)} after SIGTERM; ` +
        `calls started on it > 50 ms after the delete: ${startedAfterDelete}; shares ${formatShares(sharesOf(load.byAddress, addresses, load.calls))}; ` +
        `errors ${JSON.stringify(load.errors)}`,
    );
    expect(load.calls).toBeGreaterThan(600);
    expect(load.failed).toBe(0);
    expect(deletedAt).toBeLessThan(exit.at);
    expect(routedLate, 'calls started on the leaving replica > 500 ms after its key was deleted').toEqual([]);
    expect(exit.forced).toBe(false);
    // A graceful exit: 0 or the re-raised SIGTERM (Nest's shutdown hooks re-send the signal).
    expect(exit.signal === 'SIGTERM' || exit.code === 0, describeExit(exit)).toBe(true);
  });

  it('kill -9 of one replica under load: calls move to the others within 1 s, key gone within TTL + 1 s', async () => {
    const victim = await startGreeter(processes, { etcd: fx.etcd.endpoint, namespace, ttlSeconds: TTL_SECONDS, name: 'greeter-sigkill' });
    await client.burst(30, 6);

    await client.startLoad(LOAD);
    await sleep(1_000);
    const killAt = epochNow();
    victim.proc.signal('SIGKILL');
    const deleted = await watch.waitForDelete(victim.key, (TTL_SECONDS + 5) * 1_000);
    // Keep the load going at least 1.5 s past the kill, and until the key has gone.
    await sleepUntil(Math.max(killAt + 1_500, deleted.at + 200), epochNow);
    const load = await client.stopLoad();

    const failed = failures(load.records);
    const lateFailures = failed.filter((record) => record.t > killAt + 1_000);
    const lateServed = served(load.records, victim.address).filter((record) => record.t > killAt + 1_000);
    const last = lastServed(load.records, victim.address);
    const lastFailure = failed.length > 0 ? Math.max(...failed.map((record) => record.t)) : undefined;
    const afterKill = countsBetween(load.records, killAt, Infinity);
    console.log(
      `[kill -9] calls=${load.calls} failed=${load.failed} (all within ${lastFailure === undefined ? '-' : ms(lastFailure - killAt)} of the kill) ` +
        `errors ${JSON.stringify(load.errors)}; last call served by the victim ${last === undefined ? 'never' : ms(last - killAt)} relative to the kill; ` +
        `key deleted ${ms(deleted.at - killAt)} after the kill (TTL ${TTL_SECONDS} s); calls per address after the kill ${JSON.stringify(afterKill)}`,
    );
    expect(lateServed, 'calls served by the killed replica more than 1 s after the kill').toEqual([]);
    expect(lateFailures, 'failures later than 1 s after the kill').toEqual([]);
    expect(deleted.at - killAt).toBeLessThanOrEqual((TTL_SECONDS + 1) * 1_000);
    expect((await listPrefix(fx.etcd.endpoint, `${namespace}/greeter/`)).map((entry) => entry.key)).not.toContain(victim.key);
    // The survivors took the load after the kill.
    for (const survivor of survivors) expect(afterKill[survivor.address] ?? 0).toBeGreaterThan(50);
  });
});

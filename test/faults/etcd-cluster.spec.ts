// etcd itself fails under load: the leader of a 3-node cluster is killed; the whole cluster goes down for longer
// than the lease TTL and comes back. Apps talk to all three members directly.
import { describe, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { clientHas, errorSummary, failedBetween, listsEqual, ms, record, sleepUntil, startedBetween, timeWhen } from './observe.js';
import { keyRecovery } from './registry-sampler.js';
import { check, scenario } from './scenario-runner.js';
import { LOAD, TTL_SECONDS, sleep } from './scenario.js';

const TTL_MS = TTL_SECONDS * 1_000;
const BOUND_MS = 2_000;
const TIMEOUT = 120_000;

describe.concurrent('etcd cluster faults', () => {
  it(
    '1. etcd leader killed under load',
    scenario(
      {
        name: '1. etcd leader killed under load',
        bound: '0 failed calls; every instance still registered afterwards (same key, same lease, never absent)',
      },
      async (s) => {
        const cluster = await s.cluster();
        const greeters = await s.greeters(3);
        const client = await s.client();
        await client.burst(30, 6);
        const sampler = s.sampler();
        await client.startLoad(LOAD);
        await sleep(1_500);
        const leases = new Map(greeters.map((greeter) => [greeter.key, sampler.latest()?.get(greeter.key)?.lease]));

        const leader = await cluster.leader();
        const killAt = s.mark(`kill -9 the leader ${leader.name}`);
        await leader.kill('SIGKILL');
        const newLeader = await cluster.leader(10_000);
        const electedAt = s.mark(`new leader ${newLeader.name}`);
        // End to end: a record written once etcd takes writes again reaches the client.
        const probe = `${s.prefix}probe-after-leader-kill`;
        const probeAt = await s.view.putEventually(probe, record(`127.0.0.1:${await freePort()}`), 10_000);
        const probeSeenAt = await timeWhen(() => clientHas(client, probe), 10_000);
        s.mark(`probe written ${ms(probeAt - killAt)}, seen by the client ${ms(probeSeenAt && probeSeenAt - killAt)} after the kill`);
        await s.view.delete(probe);
        await timeWhen(async () => !(await clientHas(client, probe)), 5_000);
        // Past 2 x TTL after the kill: a lease nobody kept alive would have expired by now.
        await sleepUntil(killAt + 2 * TTL_MS + 1_500);
        const load = await client.stopLoad();
        await sampler.stop();
        const alive = await Promise.all(
          greeters.map((greeter) => s.view.leaseTtl(leases.get(greeter.key) ?? '0').catch(() => -1)),
        );

        const fates = greeters.map((greeter) => keyRecovery(sampler.samples, greeter.key, load.started));
        const kept = fates.map((fate, index) => fate.presentAtEnd && fate.absentSamples === 0 && fate.recreated === 0 && fate.leaseChanges === 0 && fate.finalLease === leases.get(greeters[index].key) && alive[index] > 0);
        const recoveryMs = probeSeenAt === undefined ? undefined : probeSeenAt - killAt;
        return {
          calls: load.calls,
          failed: load.failed,
          allowedFailed: 0,
          registrationsLost: kept.filter((ok) => !ok).length,
          recoveryMs: recoveryMs ?? null,
          details:
            `new leader ${ms(electedAt - killAt)} after the kill; a record written after the kill reached the client ${ms(recoveryMs)} after it; ` +
            `keys on their first lease at the end: ${kept.filter(Boolean).length}/3 (remaining TTLs ${alive.join(', ')} s); ` +
            `calls ${load.calls}, failed ${load.failed} (${errorSummary(load.records)})`,
          checks: [
            check(`0 failed calls (got ${load.failed}: ${errorSummary(load.records)})`, load.failed === 0),
            check(
              `every instance still registered on its lease (${fates.map((f) => `absent ${f.absentSamples}, recreated ${f.recreated}, lease changes ${f.leaseChanges}`).join('; ')}; TTLs ${alive.join(', ')})`,
              kept.every(Boolean),
            ),
            check(`the client's watch works after the election (probe seen ${ms(recoveryMs)} after the kill)`, recoveryMs !== undefined),
          ],
        };
      },
    ),
    TIMEOUT,
  );

  it(
    '2. whole etcd cluster down longer than the lease TTL',
    scenario(
      {
        name: '2. whole etcd cluster down longer than the lease TTL',
        bound: `0 failed calls (clients keep their last list); after etcd is back every instance registered again within ${BOUND_MS} ms and the client's watch live again within ${BOUND_MS} ms, no app restarted`,
      },
      async (s) => {
        const cluster = await s.cluster();
        const greeters = await s.greeters(3);
        const client = await s.client();
        await client.burst(30, 6);
        const sampler = s.sampler();
        await client.startLoad(LOAD);
        await sleep(1_000);
        const pids = greeters.map((greeter) => greeter.proc.pid);

        const OUTAGE_MS = 2 * TTL_MS + 1_000; // past the TTL and past etcd3's 2 x TTL loss detection
        const downAt = s.mark('kill -9 every etcd member');
        await Promise.all(cluster.members.map((member) => member.kill('SIGKILL')));
        await sleepUntil(downAt + OUTAGE_MS);
        s.mark('restart every member');
        await Promise.all(cluster.members.map((member) => member.restart()));
        const healAt = s.mark('cluster healthy again');
        const probe = `${s.prefix}probe-after-outage`;
        const probeAt = await s.view.putEventually(probe, record(`127.0.0.1:${await freePort()}`), 10_000);
        const probeSeenAt = await timeWhen(() => clientHas(client, probe), 10_000);
        s.mark(`probe written ${ms(probeAt - healAt)}, seen by the client ${ms(probeSeenAt && probeSeenAt - healAt)} after the heal`);
        await s.view.delete(probe);
        const equalAt = await timeWhen(() => listsEqual(s, client), 5_000);
        // Long enough for a key left on a lease nobody keeps alive to expire.
        await sleepUntil(healAt + 2 * TTL_MS + 1_500);
        const load = await client.stopLoad();
        await sampler.stop();

        const fates = greeters.map((greeter) => keyRecovery(sampler.samples, greeter.key, healAt));
        const perKey = fates.map((fate) => (fate.stableSince === undefined ? undefined : Math.max(0, fate.stableSince - healAt)));
        const registeredMs = perKey.some((value) => value === undefined) ? undefined : Math.max(...(perKey as number[]));
        const watchMs = probeSeenAt === undefined ? undefined : probeSeenAt - healAt;
        const recoveryMs = registeredMs === undefined || watchMs === undefined ? undefined : Math.max(registeredMs, watchMs);
        const lost = perKey.filter((value) => value === undefined || value > BOUND_MS).length;
        const failedInOutage = failedBetween(load.records, downAt, healAt);
        const callsInOutage = startedBetween(load.records, downAt, healAt);
        const restarted = greeters.filter((greeter, index) => !greeter.proc.alive || greeter.proc.pid !== pids[index]).length;
        return {
          calls: load.calls,
          failed: load.failed,
          allowedFailed: 0,
          registrationsLost: lost,
          recoveryMs: recoveryMs ?? null,
          details:
            `etcd down ${ms(healAt - downAt)} (TTL ${TTL_SECONDS} s); ${callsInOutage} calls during the outage, ${failedInOutage} failed; ` +
            `after the heal: instances registered again in ${perKey.map(ms).join(', ')} (final leases ${fates.map((f) => f.finalLease).join(', ')}), ` +
            `a record written after the heal reached the client in ${ms(watchMs)}, client list equal to etcd ${ms(equalAt && equalAt - healAt)} after the heal; ` +
            `calls ${load.calls}, failed ${load.failed} (${errorSummary(load.records)})`,
          checks: [
            check(`0 failed calls (got ${load.failed}: ${errorSummary(load.records)})`, load.failed === 0),
            check(`calls kept flowing during the outage (${callsInOutage})`, callsInOutage > 500),
            check(`every instance registered again within ${BOUND_MS} ms of the heal (${perKey.map(ms).join(', ')})`, lost === 0),
            check(`the client's watch live again within ${BOUND_MS} ms of the heal (${ms(watchMs)})`, watchMs !== undefined && watchMs <= BOUND_MS),
            check(`no app restarted (${restarted})`, restarted === 0),
          ],
        };
      },
    ),
    TIMEOUT,
  );
});

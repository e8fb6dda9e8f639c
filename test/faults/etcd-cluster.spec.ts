// etcd itself fails under load: the leader of a 3-node cluster is killed; the whole cluster goes down for longer
// than the lease TTL and comes back. Apps talk to all three members directly.
import { describe } from 'vitest';
import { sleepUntil, timeWhen } from '../support/wait.js';
import { callsSummary, failedBetween, listsEqual, ms, probeWatch, startedBetween, whenDropped } from './observe.js';
import { fatesOf } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, LOAD, TTL_MS, TTL_SECONDS } from './scenario.js';

describe.concurrent('etcd cluster faults', () => {
  scenarioTest(
    {
      name: '1. etcd leader killed under load',
      bound: '0 failed calls; every instance still registered afterwards (same key, same lease, never absent)',
    },
    async (s) => {
      const cluster = await s.cluster();
      const greeters = await s.greeters(3);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client, LOAD, 1_500);
      const leases = new Map(greeters.map((greeter) => [greeter.key, sampler.latest()?.get(greeter.key)?.lease]));

      const leader = await cluster.leader();
      const killAt = s.mark(`kill -9 the leader ${leader.name}`);
      await leader.kill('SIGKILL');
      const newLeader = await cluster.leader(10_000);
      const electedAt = s.mark(`new leader ${newLeader.name}`);
      // End to end: a record written once etcd takes writes again reaches the client.
      const probe = await probeWatch(s, client, 'probe-after-leader-kill');
      s.mark(`probe written ${ms(probe.writtenAt - killAt)}, seen by the client ${ms(probe.seenAt && probe.seenAt - killAt)} after the kill`);
      await s.view.delete(probe.key);
      await whenDropped(client, probe.key, 5_000);
      // Past 2 x TTL after the kill: a lease nobody kept alive would have expired by now.
      await sleepUntil(killAt + 2 * TTL_MS + 1_500);
      const load = await client.stopLoad();
      await sampler.stop();
      const alive = await Promise.all(
        greeters.map((greeter) => s.view.leaseTtl(leases.get(greeter.key) ?? '0').catch(() => -1)),
      );

      const fates = fatesOf(sampler.samples, greeters, load.started);
      const kept = fates.map((fate, index) => fate.presentAtEnd && fate.absentSamples === 0 && fate.recreated === 0 && fate.leaseChanges === 0 && fate.finalLease === leases.get(greeters[index].key) && alive[index] > 0);
      const recoveryMs = probe.seenAt === undefined ? undefined : probe.seenAt - killAt;
      return outcomeOf(load, {
        registrationsLost: kept.filter((ok) => !ok).length,
        recoveryMs,
        details:
          `new leader ${ms(electedAt - killAt)} after the kill; a record written after the kill reached the client ${ms(recoveryMs)} after it; ` +
          `keys on their first lease at the end: ${kept.filter(Boolean).length}/3 (remaining TTLs ${alive.join(', ')} s); ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(
            `every instance still registered on its lease (${fates.map((f) => `absent ${f.absentSamples}, recreated ${f.recreated}, lease changes ${f.leaseChanges}`).join('; ')}; TTLs ${alive.join(', ')})`,
            kept.every(Boolean),
          ),
          check(`the client's watch works after the election (probe seen ${ms(recoveryMs)} after the kill)`, recoveryMs !== undefined),
        ],
      });
    },
  );

  scenarioTest(
    {
      name: '2. whole etcd cluster down longer than the lease TTL',
      bound: `0 failed calls (clients keep their last list); after etcd is back every instance registered again within ${BOUND_MS} ms and the client's watch live again within ${BOUND_MS} ms, no app restarted`,
    },
    async (s) => {
      const cluster = await s.cluster();
      const greeters = await s.greeters(3);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client);
      const pids = greeters.map((greeter) => greeter.proc.pid);

      const OUTAGE_MS = 2 * TTL_MS + 1_000; // past the TTL and past etcd3's 2 x TTL loss detection
      const downAt = s.mark('kill -9 every etcd member');
      await Promise.all(cluster.members.map((member) => member.kill('SIGKILL')));
      await sleepUntil(downAt + OUTAGE_MS);
      s.mark('restart every member');
      await Promise.all(cluster.members.map((member) => member.restart()));
      const healAt = s.mark('cluster healthy again');
      const probe = await probeWatch(s, client, 'probe-after-outage');
      s.mark(`probe written ${ms(probe.writtenAt - healAt)}, seen by the client ${ms(probe.seenAt && probe.seenAt - healAt)} after the heal`);
      await s.view.delete(probe.key);
      const equalAt = await timeWhen(() => listsEqual(s, client), 5_000);
      // Long enough for a key left on a lease nobody keeps alive to expire.
      await sleepUntil(healAt + 2 * TTL_MS + 1_500);
      const load = await client.stopLoad();
      await sampler.stop();

      const fates = fatesOf(sampler.samples, greeters, healAt);
      const perKey = fates.map((fate) => (fate.stableSince === undefined ? undefined : Math.max(0, fate.stableSince - healAt)));
      const registeredMs = perKey.some((value) => value === undefined) ? undefined : Math.max(...(perKey as number[]));
      const watchMs = probe.seenAt === undefined ? undefined : probe.seenAt - healAt;
      const recoveryMs = registeredMs === undefined || watchMs === undefined ? undefined : Math.max(registeredMs, watchMs);
      const lost = perKey.filter((value) => value === undefined || value > BOUND_MS).length;
      const failedInOutage = failedBetween(load.records, downAt, healAt);
      const callsInOutage = startedBetween(load.records, downAt, healAt);
      const restarted = greeters.filter((greeter, index) => !greeter.proc.alive || greeter.proc.pid !== pids[index]).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs,
        details:
          `etcd down ${ms(healAt - downAt)} (TTL ${TTL_SECONDS} s); ${callsInOutage} calls during the outage, ${failedInOutage} failed; ` +
          `after the heal: instances registered again in ${perKey.map(ms).join(', ')} (final leases ${fates.map((f) => f.finalLease).join(', ')}), ` +
          `a record written after the heal reached the client in ${ms(watchMs)}, client list equal to etcd ${ms(equalAt && equalAt - healAt)} after the heal; ` +
          callsSummary(load),
        checks: [
          noFailedCalls(load),
          check(`calls kept flowing during the outage (${callsInOutage})`, callsInOutage > 500),
          check(`every instance registered again within ${BOUND_MS} ms of the heal (${perKey.map(ms).join(', ')})`, lost === 0),
          check(`the client's watch live again within ${BOUND_MS} ms of the heal (${ms(watchMs)})`, watchMs !== undefined && watchMs <= BOUND_MS),
          check(`no app restarted (${restarted})`, restarted === 0),
        ],
      });
    },
  );
});

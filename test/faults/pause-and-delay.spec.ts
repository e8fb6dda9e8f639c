// A greeter frozen (SIGSTOP) past its TTL and resumed; etcd slowed down by 300 ms per packet for every app
// (a fault proxy in delay mode). Single etcd node each.
import { describe } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { sleep, sleepUntil } from '../support/wait.js';
import { callsSummary, ms, record, servedAfter, whenDropped, whenListed, whenSampled } from './observe.js';
import { fatesOf, keyRecovery, stayed } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, LOAD, TTL_MS, TTL_SECONDS } from './scenario.js';

const PAUSED_CALL_DEADLINE_MS = 8_000;

describe.concurrent('a frozen greeter, a slow etcd', () => {
  scenarioTest(
    {
      name: '5. a greeter paused (SIGSTOP) past its TTL, then resumed',
      bound: `removed while paused; registered again within ${BOUND_MS} ms of resuming; 0 failed calls (the pause is shorter than the ${PAUSED_CALL_DEADLINE_MS / 1_000} s call deadline)`,
    },
    async (s) => {
      await s.etcd();
      const [paused, ...others] = await s.greeters(3);
      // Calls sent to the frozen greeter wait out the pause, then its catch-up: on a busy machine a resumed
      // process took 1.3 s to run again, so the deadline leaves room beyond the pause.
      const client = await s.client({ env: { LOAD_CLIENT_DEADLINE_MS: String(PAUSED_CALL_DEADLINE_MS) } });
      const sampler = s.sampler();
      // Calls already sent to the frozen process wait for it: room for them, so the load does not stall.
      await s.startLoad(client, { ...LOAD, concurrency: 256 });

      const PAUSE_MS = TTL_MS + 1_500;
      const pauseAt = s.mark('SIGSTOP greeter-1');
      paused.proc.signal('SIGSTOP');
      const removedAt = await whenSampled(sampler, paused.key, false, PAUSE_MS);
      const droppedAt = await whenDropped(client, paused.key, PAUSE_MS);
      s.mark(`removed from etcd ${ms(removedAt && removedAt - pauseAt)}, from the client ${ms(droppedAt && droppedAt - pauseAt)} after SIGSTOP`);
      await sleepUntil(pauseAt + PAUSE_MS);
      const resumeAt = s.mark('SIGCONT greeter-1');
      paused.proc.signal('SIGCONT');
      const backAt = await whenSampled(sampler, paused.key, true, 10_000);
      s.mark(`key back ${ms(backAt && backAt - resumeAt)} after SIGCONT`);
      await sleepUntil((backAt ?? resumeAt) + 2 * TTL_MS + 1_000);
      const load = await client.stopLoad();
      await sampler.stop();

      const recovery = keyRecovery(sampler.samples, paused.key, resumeAt);
      const recoveryMs = recovery.stableSince === undefined ? undefined : Math.max(0, recovery.stableSince - resumeAt);
      const servedAgain = servedAfter(load.records, paused.address, resumeAt + (recoveryMs ?? 0));
      const othersFate = fatesOf(sampler.samples, others, load.started);
      const stuck = load.records.filter((r) => r.a === paused.address && r.s < resumeAt && r.t > resumeAt);
      const slowest = stuck.length > 0 ? Math.max(...stuck.map((r) => r.t - r.s)) : 0;
      const lost = (recoveryMs === undefined || recoveryMs > BOUND_MS ? 1 : 0) + othersFate.filter((fate) => !stayed(fate, true)).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs,
        details:
          `paused ${PAUSE_MS} ms; removed from etcd ${ms(removedAt && removedAt - pauseAt)} and from the client ${ms(droppedAt && droppedAt - pauseAt)} after SIGSTOP; ` +
          `${stuck.length} calls sent to it before the removal waited for the resume (slowest ${ms(slowest)}); registered again ${ms(recoveryMs)} after SIGCONT; ` +
          `served ${servedAgain.length} new calls after that; ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(`removed from etcd while paused (${ms(removedAt && removedAt - pauseAt)})`, removedAt !== undefined),
          check(`removed from the client while paused (${ms(droppedAt && droppedAt - pauseAt)})`, droppedAt !== undefined),
          check(`registered again within ${BOUND_MS} ms of resuming (${ms(recoveryMs)})`, recoveryMs !== undefined && recoveryMs <= BOUND_MS),
          check(`serves new calls again (${servedAgain.length})`, servedAgain.length > 0),
          check('the other instances stayed registered', othersFate.every((fate) => stayed(fate, true))),
        ],
      });
    },
  );

  scenarioTest(
    {
      name: '6. etcd slowed by 300 ms per packet',
      bound: 'no lease lost (every key on its first lease, never absent), 0 failed calls, while every app talks to etcd through a 300 ms-per-packet delay for 3 x TTL',
    },
    async (s) => {
      await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const greeters = await s.greeters(3, { etcdHosts: [proxy.endpoint] });
      const client = await s.client({ etcdHosts: [proxy.endpoint] });
      const sampler = s.sampler();
      await s.startLoad(client);
      const leases = new Map(greeters.map((greeter) => [greeter.key, sampler.latest()?.get(greeter.key)?.lease]));

      const SLOW_MS = 3 * TTL_MS;
      const slowAt = s.mark('proxy: delay 300 ms per packet, both ways');
      await proxy.delay(300);
      await sleep(1_000);
      // The client's watch still works, just slower: a record written now reaches it.
      const probe = `${s.prefix}probe-slow`;
      const probeAt = Date.now();
      await s.view.put(probe, record(`127.0.0.1:${await freePort()}`));
      const probeSeenAt = await whenListed(client, probe, 5_000);
      await s.view.delete(probe);
      await whenDropped(client, probe, 5_000);
      await sleepUntil(slowAt + SLOW_MS);
      s.mark('proxy: pass');
      await proxy.pass();
      await sleep(500);
      const load = await client.stopLoad();
      await sampler.stop();

      const fates = fatesOf(sampler.samples, greeters, load.started);
      const leaseKept = greeters.map((greeter, index) => fates[index].finalLease === leases.get(greeter.key) && fates[index].leaseChanges === 0);
      const lostLines = greeters.filter((greeter) => /lease \S+ lost/.test(greeter.proc.output())).length;
      const lost = fates.filter((fate, index) => !stayed(fate, true) || !leaseKept[index]).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        details:
          `${SLOW_MS} ms at 300 ms per packet (TTL ${TTL_SECONDS} s, keepalive every ${Math.round(TTL_MS / 3)} ms); ` +
          `leases kept: ${leaseKept.filter(Boolean).length}/3, greeters logging a lost lease: ${lostLines}; ` +
          `a record written meanwhile reached the client in ${ms(probeSeenAt && probeSeenAt - probeAt)}; ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(`every key stayed on its first lease, never absent (${fates.map((f) => `absent ${f.absentSamples}, lease changes ${f.leaseChanges}, recreated ${f.recreated}`).join('; ')})`, lost === 0),
          check(`no greeter logged a lost lease (${lostLines})`, lostLines === 0),
          check(`the client's watch kept working (probe seen in ${ms(probeSeenAt && probeSeenAt - probeAt)})`, probeSeenAt !== undefined),
        ],
      });
    },
  );
});

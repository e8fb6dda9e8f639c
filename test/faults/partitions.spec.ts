// Partitions between one process and etcd (a fault proxy in between): a greeter cut from etcd past its TTL, and
// the client cut from etcd while instances come and go and etcd compacts. Single etcd node each.
import { describe } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { sleep, sleepUntil, timeWhen } from '../support/wait.js';
import { callsSummary, clientKeys, failedBetween, listsEqual, ms, record, servedAfter, startedBetween, whenDropped, whenSampled } from './observe.js';
import { fatesOf, keyRecovery, stayed } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, TTL_MS, compact } from './scenario.js';

describe.concurrent('partitions from etcd', () => {
  scenarioTest(
    {
      name: '3. one greeter cut from etcd longer than its TTL',
      bound: `its key expires and calls leave it with 0 failures; registered again within ${BOUND_MS} ms of the heal and serving calls again`,
    },
    async (s) => {
      await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const [cut, ...others] = await Promise.all([s.greeter({ name: 'greeter-cut', etcdHosts: [proxy.endpoint] }), s.greeter(), s.greeter()]);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client);

      const CUT_MS = TTL_MS + 3_000; // past the TTL, and past etcd3's own 2 x TTL loss detection
      const cutAt = s.mark('proxy: cut greeter-cut from etcd');
      await proxy.cut();
      const expiredAt = await whenSampled(sampler, cut.key, false, TTL_MS + 3_000);
      s.mark(`key of greeter-cut gone from etcd: ${ms(expiredAt && expiredAt - cutAt)} after the cut`);
      const droppedAt = await whenDropped(client, cut.key, TTL_MS + 3_000);
      s.mark(`client dropped greeter-cut: ${ms(droppedAt && droppedAt - cutAt)} after the cut`);
      await sleepUntil(cutAt + CUT_MS);
      const healAt = s.mark('proxy: heal');
      await proxy.pass();
      const backAt = await whenSampled(sampler, cut.key, true, 10_000);
      s.mark(`key of greeter-cut back in etcd: ${ms(backAt && backAt - healAt)} after the heal`);
      // Long enough for a key on a lease nobody keeps alive to expire again.
      await sleepUntil((backAt ?? healAt) + 2 * TTL_MS + 1_000);
      const load = await client.stopLoad();
      await sampler.stop();

      const recovery = keyRecovery(sampler.samples, cut.key, healAt);
      const recoveryMs = recovery.stableSince === undefined ? undefined : Math.max(0, recovery.stableSince - healAt);
      const duringCut = keyRecovery(sampler.samples, cut.key, cutAt, healAt);
      const othersFate = fatesOf(sampler.samples, others, load.started);
      const routedWhileDropped = droppedAt === undefined ? [] : servedAfter(load.records, cut.address, droppedAt + 200).filter((r) => r.s < healAt);
      const servedAgain = servedAfter(load.records, cut.address, healAt);
      const firstServedAgain = servedAgain.length > 0 ? Math.min(...servedAgain.map((r) => r.t)) - healAt : undefined;
      const lost = (recoveryMs === undefined || recoveryMs > BOUND_MS ? 1 : 0) + othersFate.filter((fate) => !stayed(fate, true)).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs,
        details:
          `cut ${CUT_MS} ms; key gone ${ms(expiredAt && expiredAt - cutAt)} and dropped by the client ${ms(droppedAt && droppedAt - cutAt)} after the cut; ` +
          `registered again ${ms(recoveryMs)} after the heal (stable on lease ${recovery.finalLease}); served calls again ${ms(firstServedAgain)} after the heal ` +
          `(${servedAgain.length} calls); ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(`its key expired during the cut (absent in ${duringCut.absentSamples} samples)`, duringCut.absentSamples > 0),
          check(`the client dropped it during the cut (${ms(droppedAt && droppedAt - cutAt)} after the cut)`, droppedAt !== undefined && droppedAt < healAt),
          check(`no call routed to it once dropped (got ${routedWhileDropped.length})`, routedWhileDropped.length === 0),
          check(`registered again within ${BOUND_MS} ms of the heal (${ms(recoveryMs)})`, recoveryMs !== undefined && recoveryMs <= BOUND_MS),
          check(`serves calls again after the heal (${servedAgain.length} calls)`, servedAgain.length > 0),
          check(
            `the other instances stayed registered (${othersFate.map((f) => `absent ${f.absentSamples}, recreated ${f.recreated}`).join('; ')})`,
            othersFate.every((fate) => stayed(fate, true)),
          ),
        ],
      });
    },
  );

  scenarioTest(
    {
      name: '4. the client cut from etcd while instances come and go',
      bound: `0 failed calls on the last known list during the cut; after the heal the client's list equals etcd's within ${BOUND_MS} ms (compaction during the cut)`,
    },
    async (s) => {
      const etcd = await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const [g1, g2, leaving] = await s.greeters(3);
      const client = await s.client({ etcdHosts: [proxy.endpoint] });
      await s.startLoad(client);
      const before = await clientKeys(client);

      const cutAt = s.mark('proxy: cut the client from etcd');
      await proxy.cut();
      leaving.proc.signal('SIGTERM');
      const exit = await leaving.proc.awaitExit(15_000);
      s.mark(`greeter-3 exited (${exit.signal ?? exit.code})`);
      const joined = await s.greeter({ name: 'greeter-joined' });
      const churn = `${s.prefix}churn-${Date.now()}`;
      const deadPort = await freePort();
      await s.view.put(churn, record(`127.0.0.1:${deadPort}`));
      await s.view.delete(churn);
      const compactedAt = await compact(etcd.endpoint);
      s.mark(`compacted at revision ${compactedAt}`);
      const during = await clientKeys(client);
      await sleepUntil(cutAt + 5_000);
      const healAt = s.mark('proxy: heal');
      await proxy.pass();
      const equalAt = await timeWhen(() => listsEqual(s, client), 10_000);
      s.mark(`client list equals etcd: ${ms(equalAt && equalAt - healAt)} after the heal`);
      await sleep(1_000);
      const load = await client.stopLoad();
      const final = await clientKeys(client);
      const inEtcd = (await s.view.range(s.prefix)).kvs.map((kv) => kv.key);

      const recoveryMs = equalAt === undefined ? undefined : equalAt - healAt;
      const failedDuringCut = failedBetween(load.records, cutAt, healAt);
      const callsDuringCut = startedBetween(load.records, cutAt, healAt);
      const joinedServed = servedAfter(load.records, joined.address, healAt).length;
      const expected = [g1.key, g2.key, joined.key].sort();
      const lost = expected.filter((key) => !inEtcd.includes(key)).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs,
        details:
          `during the 5 s cut: greeter-3 left (SIGTERM), greeter-joined registered, a record came and went, etcd compacted; ` +
          `${callsDuringCut} calls during the cut, ${failedDuringCut} failed; client list during the cut ${during.length === before.length && during.every((k, i) => k === before[i]) ? 'kept unchanged' : 'CHANGED'}; ` +
          `equal to etcd ${ms(recoveryMs)} after the heal; greeter-joined served ${joinedServed} calls after the heal; ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(`calls kept flowing during the cut (${callsDuringCut})`, callsDuringCut > 500),
          check('the client kept its last list during the cut', JSON.stringify(during) === JSON.stringify(before)),
          check(`client list equal to etcd within ${BOUND_MS} ms of the heal (${ms(recoveryMs)})`, recoveryMs !== undefined && recoveryMs <= BOUND_MS),
          check(`client list at the end = the live instances (${final.length} keys)`, JSON.stringify(final) === JSON.stringify(expected)),
          check(`the instance that joined during the cut serves calls after the heal (${joinedServed})`, joinedServed > 0),
          check(`every live instance registered at the end (${lost} missing)`, lost === 0),
        ],
      });
    },
  );
});

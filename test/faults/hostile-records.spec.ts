// Records no registrar writes, but anyone with write access to the prefix can: Metadata nested 5,000 levels deep
// while the client balances by metadata weight, and more than 4 MiB of values under one service (more than
// etcd3's default receive limit for one list).
import { describe } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { sleep, timeWhen } from '../support/wait.js';
import { startDecoy } from './decoy.js';
import { callsSummary, clientKeys, errorSummary, ms, record, servedAfter, warnLines, whenDropped, whenListed, whenSampled } from './observe.js';
import { fatesOf, stayed } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, LOAD, compact } from './scenario.js';

/** Its retries are at most 1 s apart, then 5 MiB to page through on a busy machine. */
const RELIST_BOUND_MS = 5_000;
const DEPTH = 5_000;
/** Five values of 1 MiB: 5 MiB under one prefix, above the 4 MiB a gRPC message may carry by default. */
const BIG_VALUES = 5;
const BIG_BYTES = 2 ** 20;
/** A warning line that carries a 10 KB record instead of a short reason would be this long at least. */
const LONG_LINE = 1_000;

/** `{"Addr":...,"Metadata":{"weight":[[[...]]]}}`, `depth` arrays deep: about 2 bytes per level. */
function nestedRecord(address: string, depth: number): string {
  return `{"Addr":${JSON.stringify(address)},"Metadata":{"weight":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
}

describe.concurrent('hostile records', () => {
  scenarioTest(
    {
      name: '12. Metadata nested 5,000 levels deep, client balancing by metadata weight',
      bound:
        'the client process never exits; 0 failed calls; each deep record (at a live greeter\'s address, at a decoy\'s) skipped and logged once, ' +
        `rewrites included, in a short line; a greeter joining and one leaving afterwards reach the client within ${BOUND_MS} ms`,
    },
    async (s) => {
      await s.etcd();
      const greeters = await s.greeters(3);
      const decoy = await startDecoy(s);
      const client = await s.client({ env: { LOAD_CLIENT_POLICY: 'metadata_weighted', LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } });
      const sampler = s.sampler();
      await s.startLoad(client, LOAD, 500);

      const deep = [
        { key: `${s.prefix}deep-at-live-greeter`, address: greeters[0].address },
        { key: `${s.prefix}deep-at-decoy`, address: decoy.address },
      ];
      const size = Buffer.byteLength(nestedRecord(decoy.address, DEPTH));
      const writeAt = s.mark(`writing 2 records with Metadata.weight ${DEPTH} arrays deep (${size} bytes each)`);
      for (const { key, address } of deep) await s.view.put(key, nestedRecord(address, DEPTH));
      await sleep(500);
      // New content, same kind of garbage: still one warning per key.
      for (const { key, address } of deep) await s.view.put(key, nestedRecord(address, DEPTH + 1));
      await sleep(500);

      const joined = await s.greeter({ name: 'greeter-joined' });
      const joinedAt = await whenListed(client, joined.key, 10_000);
      const joinMs = joinedAt === undefined ? undefined : joinedAt - (sampler.samples.find((x) => x.kvs?.has(joined.key))?.at ?? joinedAt);
      s.mark(`greeter-joined listed by the client ${ms(joinMs)} after its key appeared`);
      const leaving = greeters[2];
      const termAt = s.mark(`SIGTERM ${leaving.name}`);
      leaving.proc.signal('SIGTERM');
      const goneAt = await whenSampled(sampler, leaving.key, false, 10_000);
      const droppedAt = await whenDropped(client, leaving.key, 10_000);
      const leaveMs = goneAt === undefined || droppedAt === undefined ? undefined : Math.max(0, droppedAt - goneAt);
      s.mark(`${leaving.name}: key gone ${ms(goneAt && goneAt - termAt)} after SIGTERM, dropped by the client ${ms(leaveMs)} after that`);
      await leaving.proc.awaitExit(15_000);
      await sleep(1_000);
      const load = await client.stopLoad();
      await sampler.stop();

      await sleep(200); // let the log file catch up
      const output = s.fullOutput(client.proc);
      const warned = deep.map(({ key }) => warnLines(output, key));
      const longest = Math.max(0, ...warned.flat().map((line) => line.length));
      const reasons = warned.map((lines) => lines[0]?.split(': ').slice(2).join(': ').slice(0, 120) ?? 'none');
      const listed = await clientKeys(client);
      const live = [greeters[0], greeters[1], joined].map((greeter) => greeter.key).sort();
      const decoyCalls = load.byAddress[decoy.address] ?? 0;
      const servedByJoined = servedAfter(load.records, joined.address, writeAt).length;
      const lost = fatesOf(sampler.samples, [greeters[0], greeters[1]], load.started).filter((fate) => !stayed(fate)).length;
      const crashed = [client.proc, greeters[0].proc, greeters[1].proc, joined.proc, decoy.proc].filter((proc) => !proc.alive).map((proc) => proc.name);
      const errorLines = output.split('\n').filter((line) => /ERROR|RangeError|Maximum call stack/.test(line));
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs: joinMs === undefined || leaveMs === undefined ? null : Math.max(joinMs, leaveMs),
        details:
          `2 records of ${size} bytes, Metadata.weight nested ${DEPTH} levels, each written twice; warnings per key ${warned.map((lines) => lines.length).join(', ')} ` +
          `(longest line ${longest} chars; reasons: ${reasons.join(' | ')}); error lines in the client's log ${errorLines.length}; ` +
          `afterwards a greeter joining was listed ${ms(joinMs)} after its key appeared, one leaving dropped ${ms(leaveMs)} after its key went; ` +
          `calls to the decoy ${decoyCalls}, served by the joined greeter ${servedByJoined}; ${callsSummary(load)}`,
        checks: [
          check(`no process exited (${crashed.join(', ') || 'none'})`, crashed.length === 0),
          noFailedCalls(load),
          check(`each deep record logged exactly once (${warned.map((lines) => lines.length).join(', ')})`, warned.every((lines) => lines.length === 1)),
          check(`the warning is short, not the record (${longest} chars)`, longest > 0 && longest < LONG_LINE),
          check(`no error logged by the client (${errorLines.length}: ${errorLines[0]?.slice(0, 160) ?? ''})`, errorLines.length === 0),
          check(`no call routed to the decoy (${decoyCalls})`, decoyCalls === 0),
          check(`a greeter joining afterwards listed within ${BOUND_MS} ms (${ms(joinMs)})`, joinMs !== undefined && joinMs <= BOUND_MS),
          check(`a greeter leaving afterwards dropped within ${BOUND_MS} ms (${ms(leaveMs)})`, leaveMs !== undefined && leaveMs <= BOUND_MS),
          check(`the client lists exactly the live greeters (${listed.length} keys)`, JSON.stringify(listed) === JSON.stringify(live)),
          check(`the joined greeter served calls (${servedByJoined})`, servedByJoined > 0),
          check('the other greeters stayed registered', lost === 0),
        ],
      });
    },
  );

  scenarioTest(
    {
      name: '13. more than 4 MiB of values under one service',
      bound:
        `with ${BIG_VALUES} values of 1 MiB under the prefix: a client started then discovers the live greeters and serves calls, 0 failed; ` +
        `a running client made to list again (cut from etcd, which compacts meanwhile) lists again within ${RELIST_BOUND_MS} ms of the heal and sees a greeter that joins afterwards ` +
        `within ${BOUND_MS} ms of its registration; 0 failed calls`,
    },
    async (s) => {
      const etcd = await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const greeters = await s.greeters(3);
      const running = await s.client({ name: 'client-running', etcdHosts: [proxy.endpoint], env: { LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } });
      await s.startLoad(running, LOAD, 500);

      // Garbage (over the 64 KiB a record may have), each value alone within etcd's 1.5 MiB request limit.
      const deadPort = await freePort();
      const bigKeys = Array.from({ length: BIG_VALUES }, (_, index) => `${s.prefix}big-${index}`);
      s.mark(`writing ${BIG_VALUES} values of ${BIG_BYTES} bytes`);
      for (const key of bigKeys) await s.view.put(key, record(`127.0.0.1:${deadPort}`, { pad: 'x'.repeat(BIG_BYTES) }));
      await sleep(300);

      const forkAt = s.mark('starting a new client');
      const fresh = await s.client({ name: 'client-new', env: { LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } }).catch((error: unknown) => error as Error);
      const readyMs = fresh instanceof Error ? undefined : Date.now() - forkAt;
      const burst = fresh instanceof Error ? undefined : await fresh.burst(300, 12);
      const freshKeys = fresh instanceof Error ? [] : await clientKeys(fresh);
      s.mark(`new client ${fresh instanceof Error ? `failed: ${fresh.message.split('\n')[0]}` : `ready ${ms(readyMs)} after its fork`}`);

      // The running client's watch cannot resume past a compaction: it has to list the 5 MiB again.
      const resyncs = (): number => (running.proc.output().match(/resynced/g) ?? []).length;
      const resyncsBefore = resyncs();
      const cutAt = s.mark('proxy: cut the running client from etcd');
      await proxy.cut();
      await s.view.put(`${s.prefix}churn`, record(`127.0.0.1:${deadPort + 1}`));
      await s.view.delete(`${s.prefix}churn`);
      const compactedAt = await compact(etcd.endpoint);
      s.mark(`compacted at revision ${compactedAt}`);
      await sleep(Math.max(0, cutAt + 2_000 - Date.now()));
      const healAt = s.mark('proxy: heal');
      await proxy.pass();
      const resyncedAt = await timeWhen(() => resyncs() > resyncsBefore, 10_000);
      s.mark(`running client listed again ${ms(resyncedAt && resyncedAt - healAt)} after the heal`);
      const joined = await s.greeter({ name: 'greeter-joined' });
      const joinedAt = Date.now();
      const seenAt = await whenListed(running, joined.key, 10_000);
      const seenByFresh = fresh instanceof Error ? undefined : await whenListed(fresh, joined.key, 10_000);
      const joinMs = seenAt === undefined ? undefined : seenAt - joinedAt;
      s.mark(`greeter-joined listed by the running client ${ms(joinMs)} after its registration`);
      await sleep(1_000);
      const load = await running.stopLoad();
      const afterJoin = fresh instanceof Error ? undefined : await fresh.burst(300, 12);

      const live = [...greeters, joined].map((greeter) => greeter.key).sort();
      const runningKeys = await clientKeys(running);
      const expectedFresh = greeters.map((greeter) => greeter.key).sort();
      const servedByJoined = servedAfter(load.records, joined.address, joinedAt).length;
      const inEtcd = new Set((await s.view.range(s.prefix, 2_000, { keysOnly: true })).kvs.map((kv) => kv.key));
      const lost = live.filter((key) => !inEtcd.has(key)).length;
      const failed = load.failed + (burst?.failed ?? 0) + (afterJoin?.failed ?? 0);
      const calls = load.calls + (burst?.calls ?? 0) + (afterJoin?.calls ?? 0);
      const freshError = fresh instanceof Error ? fresh.message.split('\n')[0].slice(0, 300) : '';
      const summary = (b: typeof burst) => (b ? `${b.calls} calls, ${b.failed} failed${b.errors[0] ? ` (${b.errors[0].slice(0, 100)})` : ''}` : 'none');
      return {
        calls,
        failed,
        allowedFailed: 0,
        registrationsLost: lost,
        recoveryMs: resyncedAt === undefined ? null : resyncedAt - healAt,
        details:
          `${BIG_VALUES} values of ${BIG_BYTES} bytes under the prefix; a new client was ${fresh instanceof Error ? `not ready: ${freshError}` : `ready ${ms(readyMs)} after its fork`}, ` +
          `listed ${freshKeys.length} instances, burst ${summary(burst)}, after the join ${summary(afterJoin)}; ` +
          `the running client, cut for 2 s while etcd compacted, listed again ${ms(resyncedAt && resyncedAt - healAt)} after the heal and listed the joining greeter ${ms(joinMs)} after it registered ` +
          `(the new client ${ms(seenByFresh && seenByFresh - joinedAt)}); calls ${load.calls} on the running client, failed ${load.failed} (${errorSummary(load.records)})`,
        checks: [
          check(`a client started with 5 MiB under the prefix becomes ready (${fresh instanceof Error ? freshError : ms(readyMs)})`, !(fresh instanceof Error)),
          check(`it lists exactly the live greeters (${freshKeys.length} keys)`, JSON.stringify(freshKeys) === JSON.stringify(expectedFresh)),
          check(`its calls succeed (${summary(burst)}; after the join ${summary(afterJoin)})`, burst !== undefined && burst.failed === 0 && afterJoin !== undefined && afterJoin.failed === 0),
          check(
            `the running client listed again within ${RELIST_BOUND_MS} ms of the heal (${ms(resyncedAt && resyncedAt - healAt)})`,
            resyncedAt !== undefined && resyncedAt - healAt <= RELIST_BOUND_MS,
          ),
          check(`it lists a greeter that joined afterwards within ${BOUND_MS} ms (${ms(joinMs)})`, joinMs !== undefined && joinMs <= BOUND_MS),
          check(`its list is exactly the live greeters at the end (${runningKeys.length} keys)`, JSON.stringify(runningKeys) === JSON.stringify(live)),
          check(`the joined greeter served its calls (${servedByJoined})`, servedByJoined > 0),
          check(`0 failed calls on the running client (got ${load.failed}: ${errorSummary(load.records)})`, load.failed === 0),
          check(`every live greeter registered at the end (${lost} missing)`, lost === 0),
        ],
      };
    },
  );
});

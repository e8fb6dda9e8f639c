// A greeter's lease at its worst moments: SIGTERM while it re-registers after losing its lease, and its lease
// revoked from outside the moment its key appears, again and again.
import type { IKeyValue } from 'etcd3';
import { describe } from 'vitest';
import { sleep, timeWhen } from '../support/wait.js';
import { outsider } from './bulk-writer.js';
import { callsSummary, ms, servedAfter } from './observe.js';
import { fatesOf, keyRecovery, stayed } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { LOAD, TTL_MS, type Scenario } from './scenario.js';
/** Each way, once the cut heals: the grant and the claim after it take half a second each, room to land a SIGTERM in. */
const SLOW_HEAL_MS = 250;
/** Deregistration is bounded by 3 s, the drain delay by 1 s, the server's close by its in-flight calls. */
const EXIT_BOUND_MS = 8_000;
const REVOKES = 3;
const REREGISTER_BOUND_MS = 2_000;

/** Keys under the scenario's prefix that belong to process `pid` (instance ids carry `-<pid>-`). */
async function keysOf(s: Scenario, pid: number): Promise<string[]> {
  return (await s.view.range(s.prefix, 2_000, { keysOnly: true })).kvs.map((kv) => kv.key).filter((key) => key.includes(`-${pid}-`));
}

const occurrences = (text: string, pattern: RegExp): number => (text.match(new RegExp(pattern.source, 'g')) ?? []).length;

describe.concurrent('leases at the worst moment', () => {
  scenarioTest(
    {
      name: '17. SIGTERM while re-registering after a lost lease',
      bound:
        `a greeter cut from etcd past its TTL (its lease lost), SIGTERMed the moment it is granted a new lease and claims its key again: ` +
        `it exits cleanly within ${EXIT_BOUND_MS} ms, no key of it is left in etcd when it has exited nor a TTL later; 0 failed calls`,
    },
    async (s) => {
      await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const [target, ...others] = await Promise.all([s.greeter({ name: 'greeter-cut', etcdHosts: [proxy.endpoint] }), s.greeter(), s.greeter()]);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client);

      // Every write to its key, seen from outside: did the claim interrupted by SIGTERM reach etcd, and what removed it.
      const watcher = await outsider(s).watch().key(target.key).create();
      s.defer(() => watcher.cancel());
      const events: Array<{ type: 'put' | 'delete'; at: number; lease?: string }> = [];
      watcher.on('put', (kv: IKeyValue) => events.push({ type: 'put', at: Date.now(), lease: kv.lease }));
      watcher.on('delete', () => events.push({ type: 'delete', at: Date.now() }));

      const cutAt = s.mark('proxy: cut greeter-cut from etcd');
      await proxy.cut();
      // etcd expires the key after the TTL; etcd3 gives the lease up after 2 x TTL without a keepalive.
      await target.proc.waitForOutput(/lease \S+ lost/, 4 * TTL_MS + 5_000);
      const lostAt = s.mark(`greeter-cut: lease lost ${ms(Date.now() - cutAt)} after the cut`);
      const expired = sampler.latest()?.has(target.key) === false;
      const grantsBefore = occurrences(target.proc.output(), /granted lease/);
      const healAt = s.mark(`proxy: heal, ${SLOW_HEAL_MS} ms per packet`);
      await proxy.delay(SLOW_HEAL_MS);
      await target.proc.waitForOutput(new RegExp(`(?:[\\s\\S]*?granted lease){${grantsBefore + 1}}`), 15_000);
      const termAt = s.mark(`greeter-cut granted a new lease ${ms(Date.now() - healAt)} after the heal: SIGTERM`);
      target.proc.signal('SIGTERM');
      const reRegisteredFirst = /re-registered/.test(target.proc.output());
      const exit = await target.proc.awaitExit(EXIT_BOUND_MS + 7_000);
      const exitMs = exit.at - termAt;
      const leftAtExit = await keysOf(s, target.proc.pid);
      s.mark(`greeter-cut exited (${exit.signal ?? exit.code}${exit.forced ? ', forced' : ''}) ${ms(exitMs)} after SIGTERM; its keys in etcd: ${leftAtExit.length}`);
      await sleep(TTL_MS + 1_000);
      const leftAfterTtl = await keysOf(s, target.proc.pid);
      const load = await client.stopLoad();
      await sampler.stop();

      const back = keyRecovery(sampler.samples, target.key, healAt);
      const presentSamples = sampler.samples.filter((sample) => sample.at >= healAt && sample.kvs?.has(target.key)).length;
      const lost = fatesOf(sampler.samples, others, load.started).filter((fate) => !stayed(fate, true)).length;
      const clean = !exit.forced && (exit.code === 0 || exit.signal === 'SIGTERM');
      const afterHeal = events.filter((event) => event.at >= healAt);
      const writes = afterHeal.map((event) => `${event.type} ${event.at - termAt >= 0 ? '+' : ''}${event.at - termAt} ms`).join(', ');
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs: exitMs,
        details:
          `lease lost ${ms(lostAt - cutAt)} after the cut (key expired by then: ${expired}); new lease granted ${ms(termAt - healAt)} after the heal, SIGTERM at once ` +
          `(re-registration finished before it: ${reRegisteredFirst}); exited ${exit.signal ? `by ${exit.signal} (re-raised after shutdown)` : `with code ${exit.code}`}${exit.forced ? ' only after SIGKILL' : ''} ` +
          `${ms(exitMs)} after SIGTERM; its keys in etcd at exit ${leftAtExit.length}, a TTL later ${leftAfterTtl.length}; its key seen in ${presentSamples} samples after the heal ` +
          `(present at the end: ${back.presentAtEnd}); writes to its key after the heal, relative to the SIGTERM: ${writes || 'none'}; ${callsSummary(load)}`,
        checks: [
          check(`the SIGTERM came before the re-registration finished (${!reRegisteredFirst})`, !reRegisteredFirst),
          check(`exited cleanly (${exit.signal ?? `code ${exit.code}`}${exit.forced ? ', forced' : ''})`, clean),
          check(`exited within ${EXIT_BOUND_MS} ms of SIGTERM (${ms(exitMs)})`, exitMs <= EXIT_BOUND_MS),
          check(`no key of it in etcd once exited (${leftAtExit.join(', ') || 'none'})`, leftAtExit.length === 0),
          check(`nor a TTL later (${leftAfterTtl.join(', ') || 'none'})`, leftAfterTtl.length === 0),
          noFailedCalls(load),
          check('the other greeters stayed registered', lost === 0),
        ],
      });
    },
  );

  scenarioTest(
    {
      name: '18. lease revoked from outside the moment the key appears, 3 times in a row',
      bound:
        `every time, the greeter registers again on a new lease within ${REREGISTER_BOUND_MS} ms of the revoke, and stays registered (live lease) after the last; ` +
        '0 failed calls',
    },
    async (s) => {
      await s.etcd();
      const steady = await s.greeters(2);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client, LOAD, 500);

      // The outsider watches the prefix and revokes the lease of each new put of the target's key at once.
      const etcd = outsider(s);
      const watcher = await etcd.watch().prefix(s.prefix).create();
      s.defer(() => watcher.cancel());
      const puts: Array<{ lease: string; at: number }> = [];
      const revokes: Array<{ lease: string; at?: number; error?: string }> = [];
      let pid = -1;
      watcher.on('put', (kv: IKeyValue) => {
        if (!kv.key.toString().includes(`-${pid}-`)) return;
        const at = Date.now();
        if (puts.at(-1)?.lease !== kv.lease) puts.push({ lease: kv.lease, at });
        if (revokes.length >= REVOKES || revokes.some((revoke) => revoke.lease === kv.lease)) return;
        const revoke: { lease: string; at?: number; error?: string } = { lease: kv.lease };
        revokes.push(revoke);
        etcd.leaseClient.leaseRevoke({ ID: kv.lease }).then(
          () => (revoke.at = Date.now()),
          (error: unknown) => (revoke.error = String(error)),
        );
      });
      const target = await s.greeter({ name: 'greeter-revoked', waitRegistered: false });
      pid = target.proc.pid;
      const startedAt = Date.now();
      await s.awaitRegistration(target, 20_000);
      const lastRevokedAt = await timeWhen(() => revokes.length === REVOKES && revokes.every((revoke) => revoke.at !== undefined || revoke.error !== undefined), 20_000);
      s.mark(`${revokes.length} revokes done ${ms(lastRevokedAt && lastRevokedAt - startedAt)} after the start`);
      const revoked = new Set(revokes.map((revoke) => revoke.lease));
      const settledAt = await timeWhen(() => puts.some((put) => !revoked.has(put.lease)), 10_000);
      s.mark(`registered on a lease nobody revoked ${ms(settledAt && lastRevokedAt && settledAt - lastRevokedAt)} after the last revoke`);
      await sleep(2 * TTL_MS + 1_000);
      const load = await client.stopLoad();
      await sampler.stop();

      // For each revoke: the next put of the key on another lease.
      const again = revokes.map((revoke) => {
        const next = puts.find((put) => revoke.at !== undefined && put.at >= revoke.at - 5 && put.lease !== revoke.lease);
        return next && revoke.at !== undefined ? next.at - revoke.at : undefined;
      });
      const final = keyRecovery(sampler.samples, target.key);
      const finalTtl = await s.view.leaseTtl(final.finalLease ?? '0').catch(() => -1);
      const stableFrom = settledAt ?? Infinity;
      const served = servedAfter(load.records, target.address, stableFrom + 500).length;
      const revokeErrors = revokes.filter((revoke) => revoke.error !== undefined).map((revoke) => revoke.error);
      const fates = fatesOf(sampler.samples, steady, load.started);
      const lost = fates.filter((fate) => !stayed(fate)).length + (final.presentAtEnd && finalTtl > 0 ? 0 : 1);
      const slowest = again.some((value) => value === undefined) ? undefined : Math.max(...(again as number[]));
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs: slowest,
        details:
          `${revokes.length} leases revoked, each ${puts.length > 0 ? 'as soon as the key appeared on it' : '-'} (${puts.length} puts on ${new Set(puts.map((put) => put.lease)).size} leases seen); ` +
          `registered again ${again.map(ms).join(', ')} after each revoke; at the end on lease ${final.finalLease} (remaining TTL ${finalTtl} s, revoked before: ${revoked.has(final.finalLease ?? '')}), ` +
          `recreated ${final.recreated} times, lease changes ${final.leaseChanges}; it served ${served} calls after; ${callsSummary(load)}`,
        checks: [
          check(`${REVOKES} revokes went through (${revokeErrors.join('; ') || 'no error'})`, revokes.length === REVOKES && revokeErrors.length === 0),
          check(`registered again within ${REREGISTER_BOUND_MS} ms of every revoke (${again.map(ms).join(', ')})`, slowest !== undefined && slowest <= REREGISTER_BOUND_MS),
          check(
            `registered at the end on a live lease nobody revoked (${final.finalLease}, TTL ${finalTtl} s)`,
            final.presentAtEnd && finalTtl > 0 && !revoked.has(final.finalLease ?? ''),
          ),
          check(`it serves calls again (${served})`, served > 0),
          noFailedCalls(load),
          check(`the greeter is still running (${target.proc.alive})`, target.proc.alive),
          check('the other greeters stayed registered', fates.every((fate) => stayed(fate))),
        ],
      });
    },
  );
});

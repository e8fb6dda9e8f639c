// Size: 5,000 instances in one service, and one client following 100 services over a slow link to etcd.
import { describe } from 'vitest';
import { sleep, sleepUntil, timeWhen } from '../support/wait.js';
import { deleteInBatches, putInBatches } from '../support/etcd-batches.js';
import { deletePrefix, outsider } from './bulk-writer.js';
import { callsSummary, cpuMs, errorSummary, ms, record } from './observe.js';
import { fatesOf, stayed } from './registry-sampler.js';
import { check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { LOAD } from './scenario.js';

const INSTANCES = 5_000;
/** Under etcd's 128 operations per transaction: 40 transactions. */
const BATCH = 125;
const LIST_BOUND_MS = 10_000;
const SERVICES = 100;
const LINK_DELAY_MS = 60;
const SETTLE_BOUND_MS = 10_000;
/** etcd3 attaches one client's watches one at a time, a round trip each: 100 x 2 x 60 ms, and room for a busy machine. */
const WATCHES_BOUND_MS = 30_000;
const LIVE_BOUND_MS = 3_000;

/** Distinct loopback addresses where nothing listens (127.77.0.0/16, port 9). */
const bulkAddress = (index: number): string => `127.77.${index >> 8}.${index & 255}:9`;

describe.concurrent('scale', () => {
  scenarioTest(
    {
      name: '14. 5,000 instances in one service',
      bound:
        `the running client's list holds all ${INSTANCES} + 3 within ${LIST_BOUND_MS} ms of the first of ${INSTANCES / BATCH} transactions of ${BATCH} puts, ` +
        `a client started then lists them all within ${LIST_BOUND_MS} ms of starting its app, and both drop them within ${LIST_BOUND_MS} ms of one delete; ` +
        '0 failed calls (a metadata selector routes only to the 3 real greeters)',
    },
    async (s) => {
      await s.etcd();
      const zone = { GREETER_ZONE: 'fleet-real' };
      const select = { LOAD_CLIENT_SELECT_METADATA: JSON.stringify({ zone: 'fleet-real' }) };
      const greeters = await s.greeters(3, { env: zone });
      const client = await s.client({ env: select });
      await s.startLoad(client, LOAD, 500);

      const writer = outsider(s);
      const bulkPrefix = `${s.prefix}bulk-`;
      const entries = Array.from({ length: INSTANCES }, (_, index) => [`${bulkPrefix}${String(index).padStart(4, '0')}`, record(bulkAddress(index), { zone: 'fleet-bulk' })] as const);
      const total = INSTANCES + greeters.length;
      const cpuBefore = cpuMs(client.proc.pid);
      const writeAt = s.mark(`writing ${INSTANCES} records, ${BATCH} per transaction`);
      const batches = await putInBatches(writer, entries, BATCH);
      const writtenAt = s.mark(`${batches} transactions written`);
      const listedAt = await timeWhen(async () => (await client.instanceCount()) === total, LIST_BOUND_MS + 10_000, 100);
      const cpuAfter = cpuMs(client.proc.pid);
      const listMs = listedAt === undefined ? undefined : listedAt - writeAt;
      s.mark(`running client lists ${total}: ${ms(listMs)} after the first write`);

      const forkAt = s.mark('starting a new client');
      const fresh = await s.client({ name: 'client-new', env: select });
      const freshListedAt = await timeWhen(async () => (await fresh.instanceCount()) === total, LIST_BOUND_MS + 10_000, 100);
      // From when its Nest app began to start: node's own start-up on a busy machine is not discovery's doing.
      const boot = await fresh.startup();
      const freshMs = freshListedAt === undefined ? undefined : Math.min(freshListedAt, boot.firstListCount === total ? boot.firstListAt ?? Infinity : Infinity) - boot.appStartedAt;
      s.mark(`new client lists ${total}: ${ms(freshMs)} after its app began to start (${ms(boot.appStartedAt - forkAt)} after the fork); first list had ${boot.firstListCount}`);
      const burst = await fresh.burst(300, 12);

      const deleteAt = s.mark(`deleting the ${INSTANCES} records (one request)`);
      const deleted = await deletePrefix(writer, bulkPrefix);
      const droppedAt = await timeWhen(
        async () => (await client.instanceCount()) === greeters.length && (await fresh.instanceCount()) === greeters.length,
        LIST_BOUND_MS + 10_000,
        100,
      );
      const dropMs = droppedAt === undefined ? undefined : droppedAt - deleteAt;
      s.mark(`both clients back to ${greeters.length}: ${ms(dropMs)} after the delete`);
      await sleep(500);
      const load = await client.stopLoad();

      const bulkCalls = Object.keys(load.byAddress).filter((address) => address.startsWith('127.77.')).length;
      const inEtcd = new Set((await s.view.range(s.prefix, 2_000, { keysOnly: true })).kvs.map((kv) => kv.key));
      const lost = greeters.filter((greeter) => !inEtcd.has(greeter.key)).length;
      const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      return {
        calls: load.calls + burst.calls,
        failed: load.failed + burst.failed,
        allowedFailed: 0,
        registrationsLost: lost,
        recoveryMs: listMs ?? null,
        details:
          `${INSTANCES} records written in ${batches} transactions in ${ms(writtenAt - writeAt)}; the running client listed all ${total} ${ms(listMs)} after the first write ` +
          `(its CPU meanwhile ${ms(cpu)}); a client started then listed them ${ms(freshMs)} after its app began to start (its first list held ${boot.firstListCount}; ` +
          `fork to ready ${ms(boot.readyAt - forkAt)}) and made ${burst.calls} calls, ${burst.failed} failed; ` +
          `one delete of ${deleted} keys dropped them from both clients in ${ms(dropMs)}; calls ${load.calls} on the running client, failed ${load.failed} (${errorSummary(load.records)})`,
        checks: [
          check(`the running client lists all ${total} within ${LIST_BOUND_MS} ms of the first write (${ms(listMs)})`, listMs !== undefined && listMs <= LIST_BOUND_MS),
          check(`a client started then lists all ${total} within ${LIST_BOUND_MS} ms of starting its app (${ms(freshMs)})`, freshMs !== undefined && freshMs <= LIST_BOUND_MS),
          check(`both drop them within ${LIST_BOUND_MS} ms of the delete (${ms(dropMs)})`, dropMs !== undefined && dropMs <= LIST_BOUND_MS),
          check(`0 failed calls (running client ${load.failed}: ${errorSummary(load.records)}; new client ${burst.failed})`, load.failed === 0 && burst.failed === 0),
          check(`no call served by a bulk record (${bulkCalls} addresses)`, bulkCalls === 0),
          check(`the greeters stayed registered (${lost} missing)`, lost === 0),
        ],
      };
    },
  );

  scenarioTest(
    {
      name: '15. one client following 100 services through a 60 ms delay',
      bound:
        `every service's list holds its record within ${SETTLE_BOUND_MS} ms of following it; a put to each service then reaches all ${SERVICES} within ${WATCHES_BOUND_MS} ms of following ` +
        `(one client's watches attach one round trip after another), no watch given up, and a delete in each then reaches all within ${LIVE_BOUND_MS} ms (the watches are live); ` +
        '0 failed calls to the greeters meanwhile',
    },
    async (s) => {
      await s.etcd();
      const proxy = await s.proxy(s.endpoints[0]);
      const greeters = await s.greeters(2);
      const client = await s.client({ etcdHosts: [proxy.endpoint] });
      const sampler = s.sampler();
      await s.startLoad(client, LOAD, 0);

      const writer = outsider(s);
      const services = Array.from({ length: SERVICES }, (_, index) => `svc-${String(index).padStart(3, '0')}`);
      const keyOf = (service: string, instance: string): string => `${s.namespace}/${service}/${instance}`;
      const address = (index: number, instance: number): string => `127.88.${instance}.${index}:9`;
      await putInBatches(writer, services.map((service, index) => [keyOf(service, 'first'), record(address(index, 1))] as const));

      await proxy.delay(LINK_DELAY_MS);
      const followAt = s.mark(`proxy: delay ${LINK_DELAY_MS} ms per packet; following ${SERVICES} services`);
      await client.follow(services);
      const holding = async (instance: string, present: boolean): Promise<number> => {
        const followed = await client.followed();
        return services.filter((service) => followed[service]?.keys.includes(keyOf(service, instance)) === present).length;
      };
      const settledAt = await timeWhen(async () => (await holding('first', true)) === SERVICES, SETTLE_BOUND_MS + 10_000, 200);
      const settled = await client.followed();
      const settleTimes = services.map((service) => (settled[service]?.firstAt ?? Infinity) - followAt);
      const settleMs = settledAt === undefined ? undefined : Math.max(...settleTimes);
      s.mark(`every service lists its record: ${ms(settleMs)} after following`);

      const putAt = s.mark(`a second record in each of the ${SERVICES} services`);
      await putInBatches(writer, services.map((service, index) => [keyOf(service, 'second'), record(address(index, 2))] as const));
      const putSeenAt = await timeWhen(async () => (await holding('second', true)) === SERVICES, Math.max(0, followAt + WATCHES_BOUND_MS + 5_000 - Date.now()), 200);
      const putMs = putSeenAt === undefined ? undefined : putSeenAt - putAt;
      const watchesMs = putSeenAt === undefined ? undefined : putSeenAt - followAt;
      const putSeen = await holding('second', true);
      s.mark(`the put reached ${putSeen}/${SERVICES} services (all ${ms(putMs)} after it, ${ms(watchesMs)} after following)`);

      const deleteAt = s.mark(`deleting the second record of each service`);
      await deleteInBatches(writer, services.map((service) => keyOf(service, 'second')));
      const deleteSeenAt = await timeWhen(async () => (await holding('second', false)) === SERVICES, LIVE_BOUND_MS + 5_000, 100);
      const deleteMs = deleteSeenAt === undefined ? undefined : deleteSeenAt - deleteAt;
      const deleteSeen = await holding('second', false);
      s.mark(`the delete reached ${deleteSeen}/${SERVICES} services (all ${ms(deleteMs)} after it)`);
      await sleepUntil(deleteAt + 500);
      await proxy.pass();
      const load = await client.stopLoad();
      await sampler.stop();

      const final = await client.followed();
      const errors = services.filter((service) => final[service]?.error !== undefined);
      const lost = fatesOf(sampler.samples, greeters, load.started).filter((fate) => !stayed(fate)).length;
      const givenUp = (client.proc.output().match(/listing again/g) ?? []).length;
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs: watchesMs,
        details:
          `${SERVICES} services followed through a ${LINK_DELAY_MS} ms-per-packet link: the last listed its record ${ms(settleMs)} after following ` +
          `(median ${ms(settleTimes.sort((a, b) => a - b)[SERVICES >> 1])}); a put in each right after reached ${putSeen}/${SERVICES} (all ${ms(putMs)} after it, ${ms(watchesMs)} after following), ` +
          `then a delete in each ${deleteSeen}/${SERVICES} (all ${ms(deleteMs)} after it); watches given up by the client ${givenUp}; stream errors ${errors.length}; ` +
          callsSummary(load),
        checks: [
          check(`every service lists its record within ${SETTLE_BOUND_MS} ms (${ms(settleMs)})`, settleMs !== undefined && settleMs <= SETTLE_BOUND_MS),
          check(`a put in each service reaches all ${SERVICES} within ${WATCHES_BOUND_MS} ms of following (${putSeen} reached; ${ms(watchesMs)})`, watchesMs !== undefined && watchesMs <= WATCHES_BOUND_MS),
          check(`no watch given up and created again (${givenUp} "listing again" lines)`, givenUp === 0),
          check(`a delete in each then reaches all within ${LIVE_BOUND_MS} ms (${deleteSeen} reached; ${ms(deleteMs)})`, deleteMs !== undefined && deleteMs <= LIVE_BOUND_MS),
          check(`no instance stream errored (${errors.length})`, errors.length === 0),
          noFailedCalls(load),
          check('the greeters stayed registered', lost === 0),
        ],
      });
    },
  );
});

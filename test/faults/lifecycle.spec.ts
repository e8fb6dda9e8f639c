// Apps come and go: a rolling restart of all three replicas under load, and apps started while etcd cannot be
// reached (the serving app starts and registers once etcd appears; a waiting client gets a clear error; calls
// through a client that does not wait fail fast, then succeed once etcd is up).
import { status } from '@grpc/grpc-js';
import { describe } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { helloDirect } from '../support/greeter-proto.js';
import { sleep } from '../support/wait.js';
import { callsSummary, clientKeys, errorSummary, ms, quantile, whenListed } from './observe.js';
import { fatesOf, keyRecovery } from './registry-sampler.js';
import { LONG_SCENARIO_TIMEOUT_MS, check, noFailedCalls, outcomeOf, scenarioTest } from './scenario-runner.js';
import { BOUND_MS, LOAD, type GreeterProcess } from './scenario.js';

/** How long the waiting client is configured to wait for an instance. */
const CLIENT_WAIT_MS = 2_000;
/** The load client's deadline per call. */
const CALL_DEADLINE_MS = 5_000;
const FAIL_FAST_P99_MS = 1_500;
const CREATE_RECOVERY_BOUND_MS = 3_000;
const ETCD_ABSENT_MS = 3_000;

describe.concurrent('apps come and go', () => {
  scenarioTest(
    {
      name: '7. rolling restart of all 3 greeters, one at a time, under load',
      bound: '0 failed calls; every replica exits gracefully; the 3 replacements registered and listed by the client at the end',
    },
    async (s) => {
      await s.etcd();
      const originals = await s.greeters(3);
      const client = await s.client();
      const sampler = s.sampler();
      await s.startLoad(client, { ...LOAD, durationMs: 60_000 });

      const replacements: GreeterProcess[] = [];
      const steps: string[] = [];
      let slowestStep = 0;
      let forced = 0;
      for (const old of originals) {
        const termAt = s.mark(`SIGTERM ${old.name}`);
        old.proc.signal('SIGTERM');
        const exit = await old.proc.awaitExit(20_000);
        if (exit.forced || !(exit.signal === 'SIGTERM' || exit.code === 0)) forced += 1;
        const replacement = await s.greeter({ name: `${old.name}-new` });
        replacements.push(replacement);
        const listedAt = await whenListed(client, replacement.key, 10_000);
        const stepMs = (listedAt ?? Date.now()) - termAt;
        slowestStep = Math.max(slowestStep, stepMs);
        steps.push(`${old.name}: exited ${ms(exit.at - termAt)}, replacement listed ${ms(listedAt && listedAt - termAt)} after SIGTERM`);
        s.mark(steps.at(-1)!);
        await sleep(300);
      }
      await sleep(500);
      const load = await client.stopLoad();
      await sampler.stop();
      const listed = await clientKeys(client);
      const expected = replacements.map((greeter) => greeter.key).sort();
      const lost = fatesOf(sampler.samples, replacements).filter((fate) => !fate.presentAtEnd).length;
      const servedByNew = replacements.map((greeter) => load.byAddress[greeter.address] ?? 0);
      return outcomeOf(load, {
        registrationsLost: lost,
        recoveryMs: slowestStep,
        details: `${steps.join('; ')}; calls served by the replacements ${servedByNew.join(', ')}; ${callsSummary(load)}`,
        checks: [
          noFailedCalls(load),
          check(`every replica exited gracefully (${forced} did not)`, forced === 0),
          check(`the client lists exactly the 3 replacements (${listed.length} keys)`, JSON.stringify(listed) === JSON.stringify(expected)),
          check(`every replacement registered at the end (${lost} missing)`, lost === 0),
          check(`every replacement served calls (${servedByNew.join(', ')})`, servedByNew.every((count) => count > 0)),
        ],
      });
    },
    LONG_SCENARIO_TIMEOUT_MS,
  );

  scenarioTest(
    {
      name: '11. etcd not reachable when the apps start',
      bound:
        `the serving app starts and serves at once, and registers within ${BOUND_MS} ms of etcd appearing; ` +
        `a client waiting for the service gets a clear error (service, cause) after its ${CLIENT_WAIT_MS} ms timeout`,
    },
    async (s) => {
      const [etcdPort, grpcPort] = [await freePort(), await freePort()];
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      const greeter: GreeterProcess = await s.greeter({
        name: 'greeter-early',
        etcdHosts: [etcdUrl],
        waitRegistered: false,
        env: { GRPC_URL: `127.0.0.1:${grpcPort}` },
      });
      await greeter.proc.waitForOutput(/Nest microservice successfully started/, 20_000);
      const servingAt = s.mark('greeter-early serving, etcd absent');
      const direct = await callDirect(`127.0.0.1:${grpcPort}`);

      const forkAt = Date.now();
      const waiting = s.forkClient({ name: 'client-waiting', etcdHosts: [etcdUrl], env: { DISCOVERY_TIMEOUT_MS: String(CLIENT_WAIT_MS) } });
      const fatal = await new Promise<{ text: string; at: number } | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), CLIENT_WAIT_MS + 20_000);
        waiting.child.on('message', (message: Record<string, unknown>) => {
          if (message.fatal || message.ready) {
            clearTimeout(timer);
            resolve({ text: String(message.fatal ?? 'ready?!'), at: Date.now() });
          }
        });
      });
      const waitingExit = await waiting.awaitExit(10_000);
      s.mark(`waiting client: ${fatal ? `error ${ms(fatal.at - forkAt)} after fork` : 'no error'}`);
      const message = fatal?.text.split('\n')[0] ?? '';

      // The serving app has been retrying for a while (backoff at its cap) when etcd appears.
      await sleep(Math.max(0, servingAt + 3_000 - Date.now()));
      await s.etcd([], { clientPort: etcdPort });
      const healAt = s.mark('etcd up and healthy');
      await s.awaitRegistration(greeter, 15_000);
      const registeredAt = Date.now();
      const sampler = s.sampler();
      await sleep(200);
      await sampler.stop();
      const fate = keyRecovery(sampler.samples, greeter.key);
      const recoveryMs = registeredAt - healAt;

      const client = await s.client();
      const burst = await client.burst(50, 5);
      const servedByIt = burst.byAddress[greeter.address] ?? 0;
      return {
        calls: burst.calls + 1,
        failed: burst.failed + (direct.ok ? 0 : 1),
        allowedFailed: 0,
        registrationsLost: fate.presentAtEnd && recoveryMs <= BOUND_MS ? 0 : 1,
        recoveryMs,
        details:
          `greeter-early served a direct call while etcd was absent (${direct.ok ? 'ok' : direct.error}); registered ${ms(recoveryMs)} after etcd became healthy; ` +
          `the waiting client (timeout ${CLIENT_WAIT_MS} ms) failed ${fatal ? ms(fatal.at - forkAt) : 'never'} after its fork with: "${message.slice(0, 300)}"; ` +
          `then a new client made ${burst.calls} calls, ${burst.failed} failed, ${servedByIt} served by greeter-early`,
        checks: [
          check(`the serving app served while etcd was absent (${direct.ok ? 'ok' : direct.error})`, direct.ok),
          check(`registered within ${BOUND_MS} ms of etcd appearing (${ms(recoveryMs)})`, recoveryMs <= BOUND_MS),
          check('the waiting client got an error instead of hanging', fatal !== undefined && !/ready\?!/.test(fatal.text)),
          check(
            `the error came after the ${CLIENT_WAIT_MS} ms wait (${fatal ? ms(fatal.at - forkAt) : '-'} after the fork, process start included)`,
            fatal !== undefined && fatal.at - forkAt >= CLIENT_WAIT_MS && fatal.at - forkAt <= CLIENT_WAIT_MS + 10_000,
          ),
          check('the error names the service and the wait (NoLiveInstanceError)', /NoLiveInstanceError|no live instance/i.test(message) && message.includes('"greeter"')),
          check('the error says etcd could not be reached', /etcd[^.]*(unreachable|not reachable|could not be reached|cannot be reached|ECONNREFUSED|UNAVAILABLE)/i.test(message)),
          check(`the waiting client exited on its own (${waitingExit.signal ?? waitingExit.code})`, !waitingExit.forced),
          check(`calls through discovery succeed once registered (${burst.failed} failed of ${burst.calls})`, burst.failed === 0 && servedByIt === burst.calls),
        ],
      };
    },
    LONG_SCENARIO_TIMEOUT_MS,
  );

  scenarioTest(
    {
      name: '16. calls through createClient while etcd is down at start',
      bound:
        `while etcd cannot be reached (never listed), every call fails fast: UNAVAILABLE naming etcd and why ("etcd unreachable"), p99 under ${FAIL_FAST_P99_MS} ms, ` +
        `none near its ${CALL_DEADLINE_MS} ms deadline; once etcd is up calls succeed within ${CREATE_RECOVERY_BOUND_MS} ms, and no call started after the first success fails`,
    },
    async (s) => {
      const etcdPort = await freePort();
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      const greeters = await Promise.all(
        [1, 2, 3].map((n) => s.greeter({ name: `greeter-${n}`, etcdHosts: [etcdUrl], waitRegistered: false })),
      );
      await Promise.all(greeters.map((greeter) => greeter.proc.waitForOutput(/Nest microservice successfully started/, 20_000)));
      // LOAD_CLIENT_MODE=create: ClientFactory.createClient, ready at once, no waiting for an instance.
      const client = await s.client({ etcdHosts: [etcdUrl], env: { LOAD_CLIENT_MODE: 'create', LOAD_CLIENT_LOG_LEVELS: 'error,warn,log' } });
      await client.startLoad({ ...LOAD, durationMs: 60_000 });
      const downAt = s.mark('load started; etcd absent (closed port)');
      await sleep(ETCD_ABSENT_MS);

      const startAt = s.mark('starting etcd');
      await s.etcd([], { clientPort: etcdPort });
      const healAt = s.mark('etcd up and healthy');
      await Promise.all(greeters.map((greeter) => s.awaitRegistration(greeter, 15_000)));
      s.mark('every greeter registered');
      await sleep(3_000);
      const load = await client.stopLoad();

      // Calls that ended before etcd was started cannot have seen it; once it runs (even before its health check
      // passes) the client may list it empty, and calls fail "no live instance" until a greeter registers.
      const before = load.records.filter((r) => r.t < startAt);
      const failedBefore = before.filter((r) => r.a === undefined);
      const durations = failedBefore.map((r) => r.t - r.s);
      const p99 = quantile(durations, 0.99);
      const slowest = durations.length > 0 ? Math.max(...durations) : undefined;
      const namesEtcd = failedBefore.filter((r) => r.c === status.UNAVAILABLE && /etcd unreachable/.test(r.e ?? ''));
      const firstSuccess = load.records.filter((r) => r.a !== undefined).reduce<number | undefined>((first, r) => (first === undefined || r.t < first ? r.t : first), undefined);
      const recoveryMs = firstSuccess === undefined ? undefined : Math.max(0, firstSuccess - healAt);
      const failedAfter = firstSuccess === undefined ? [] : load.records.filter((r) => r.a === undefined && r.s > firstSuccess);
      const deadlines = load.records.filter((r) => r.c === status.DEADLINE_EXCEEDED).length;
      const allowed = load.records.filter((r) => r.s < (firstSuccess ?? Infinity)).length;
      const served = greeters.map((greeter) => load.byAddress[greeter.address] ?? 0);
      const example = failedBefore[0]?.e?.slice(0, 240) ?? 'none';
      return outcomeOf(load, {
        allowedFailed: allowed,
        registrationsLost: 0,
        recoveryMs,
        details:
          `etcd absent for ${ms(startAt - downAt)} (healthy ${ms(healAt - startAt)} after it was started): ${before.length} calls ended meanwhile, ${failedBefore.length} failed, ${namesEtcd.length} of them UNAVAILABLE "etcd unreachable" ` +
          `(e.g. "${example}"); failing calls took p50 ${ms(quantile(durations, 0.5))}, p99 ${ms(p99)}, max ${ms(slowest)}; ` +
          `first successful call ${ms(recoveryMs)} after etcd was healthy; afterwards ${failedAfter.length} failed; served ${served.join(', ')}; ` +
          callsSummary(load),
        checks: [
          check(`calls were made while etcd was absent (${before.length})`, before.length > 100),
          check(
            `every call that ended before etcd was started failed UNAVAILABLE naming etcd unreachable (${namesEtcd.length} of ${before.length}: ${errorSummary(before)})`,
            namesEtcd.length === before.length,
          ),
          check(`they failed fast: p99 ${ms(p99)} < ${FAIL_FAST_P99_MS} ms`, p99 !== undefined && p99 < FAIL_FAST_P99_MS),
          check(`none waited for its deadline (slowest ${ms(slowest)}, ${deadlines} DEADLINE_EXCEEDED)`, deadlines === 0 && (slowest ?? 0) < CALL_DEADLINE_MS - 1_000),
          check(`calls succeed within ${CREATE_RECOVERY_BOUND_MS} ms of etcd being up (${ms(recoveryMs)})`, recoveryMs !== undefined && recoveryMs <= CREATE_RECOVERY_BOUND_MS),
          check(`no call started after the first success failed (${failedAfter.length}: ${errorSummary(failedAfter)})`, failedAfter.length === 0),
          check(`every greeter served calls (${served.join(', ')})`, served.every((count) => count > 0)),
        ],
      });
    },
    LONG_SCENARIO_TIMEOUT_MS,
  );
});

/** One SayHello straight to an address, no discovery; never throws. */
function callDirect(address: string): Promise<{ ok: boolean; error?: string }> {
  return helloDirect(address, 3_000).then(
    () => ({ ok: true }),
    (error: Error) => ({ ok: false, error: error.message }),
  );
}

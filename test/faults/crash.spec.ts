// One replica crashes (kill -9) under load, with and without a retry policy on the client.
import { describe, it } from 'vitest';
import { epochNow, type CallRecord, type LoadResult } from '../support/processes.js';
import { clientHas, errorSummary, ms, sleepUntil, timeWhen } from './observe.js';
import { keyRecovery } from './registry-sampler.js';
import { check, scenario } from './scenario-runner.js';
import { LOAD, TTL_SECONDS, sleep, type Scenario } from './scenario.js';

const TTL_MS = TTL_SECONDS * 1_000;
const TIMEOUT = 150_000;

describe.concurrent('a replica crashes under load', () => {
  it(
    '8a. kill -9 of one greeter under load, no retry policy',
    scenario(
      {
        name: '8a. kill -9 of one greeter under load, no retry policy',
        bound: 'failed calls <= the calls in flight to the killed greeter at the moment its connection dropped (as the client saw it); no call started after that fails',
      },
      (s) => killOneGreeter(s, false),
    ),
    TIMEOUT,
  );

  it(
    '8b. kill -9 of one greeter under load, retry policy on UNAVAILABLE',
    scenario(
      {
        name: '8b. kill -9 of one greeter under load, retry policy on UNAVAILABLE',
        bound: '0 failed calls (client retry policy: 3 attempts on UNAVAILABLE)',
      },
      (s) => killOneGreeter(s, true),
    ),
    TIMEOUT,
  );
});

/** Handler delay of 50 ms, so that a few calls are always in flight to each replica. */
const KILL_LOAD = { ...LOAD, delayMs: 50, concurrency: 64 };

async function killOneGreeter(s: Scenario, withRetry: boolean) {
  await s.etcd();
  const [victim, ...others] = await s.greeters(3);
  // With retries, grpc-js traces every attempt, so a call that still fails can be explained from the client's log.
  const client = await s.client(withRetry ? { env: { LOAD_CLIENT_RETRY_ATTEMPTS: '3', GRPC_TRACE: 'retrying_call', GRPC_VERBOSITY: 'DEBUG' } } : {});
  await client.burst(60, 12);
  const sampler = s.sampler();
  await client.startLoad(KILL_LOAD);
  await sleep(1_500);
  s.mark(`kill -9 ${victim.name}`);
  const killAt = epochNow();
  victim.proc.signal('SIGKILL');
  await victim.proc.exited;
  const goneAt = await timeWhen(() => sampler.latest()?.has(victim.key) === false, TTL_MS + 3_000);
  const droppedAt = await timeWhen(async () => !(await clientHas(client, victim.key)), TTL_MS + 3_000);
  s.mark(`key gone ${ms(goneAt && goneAt - killAt)}, dropped by the client ${ms(droppedAt && droppedAt - killAt)} after the kill`);
  await sleepUntil((droppedAt ?? Date.now()) + 500);
  const load: LoadResult = await client.stopLoad();
  await sampler.stop();
  s.keep('load', { killAt, victim: victim.address, records: load.records });

  // The client learns of the crash when its connection to the victim drops: every call on it fails at that
  // moment ("Connection dropped" / ECONNRESET). Calls in flight to the victim then = those it had been sent
  // before; they include calls dispatched between the kill and that moment, which no client can avoid.
  const failures = load.records.filter((r) => r.a === undefined);
  const noticedAt = failures.length > 0 ? Math.min(...failures.map((r) => r.t)) : undefined;
  const survivors = new Set(others.map((greeter) => greeter.address));
  const toVictim = (r: CallRecord): boolean => r.a === undefined || r.a === victim.address;
  const inFlightAtKill = load.records.filter((r) => r.s <= killAt && r.t > killAt && toVictim(r)).length;
  const inFlightWhenNoticed = noticedAt === undefined ? 0 : load.records.filter((r) => r.s < noticedAt && r.t >= noticedAt && toVictim(r)).length;
  const sentInWindow = failures.filter((r) => r.s > killAt).length;
  const failedAfterNoticed = noticedAt === undefined ? 0 : failures.filter((r) => r.s >= noticedAt).length;
  const retried = load.records.filter((r) => r.s <= killAt && r.t > killAt && r.a !== undefined && survivors.has(r.a) && r.t - r.s > 3 * KILL_LOAD.delayMs).length;
  const lastFailure = failures.length > 0 ? Math.max(...failures.map((r) => r.t)) - killAt : 0;
  const fates = others.map((greeter) => keyRecovery(sampler.samples, greeter.key, load.started));
  const lost = fates.filter((fate) => !fate.presentAtEnd || fate.absentSamples > 0).length;
  const allowed = withRetry ? 0 : inFlightWhenNoticed;
  const explained = withRetry && failures.length > 0 ? ` [grpc-js trace of the failed calls: ${explainRetries(s.fullOutput(client.proc))}]` : '';
  return {
    calls: load.calls,
    failed: load.failed,
    allowedFailed: allowed,
    registrationsLost: lost,
    recoveryMs: lastFailure,
    details:
      (noticedAt === undefined
        ? `no call failed; ${inFlightAtKill} failed or victim-served calls were in flight at the kill`
        : `the client saw the connection drop ${ms(noticedAt - killAt)} after the kill; calls in flight to the killed greeter: ${inFlightAtKill} at the kill, ` +
          `${inFlightWhenNoticed} when the client saw it (${sentInWindow} dispatched in between); ${load.failed} failed, ${failedAfterNoticed} of them started after the client saw the drop`) +
      `${withRetry ? `; ${retried} calls in flight at the kill finished on a survivor after a retry` : ''}; ` +
      `key expired ${ms(goneAt && goneAt - killAt)}, dropped by the client ${ms(droppedAt && droppedAt - killAt)} after the kill; calls ${load.calls} (${errorSummary(load.records)})${explained}`,
    checks: [
      check(`failed ${load.failed} <= allowed ${allowed} (${errorSummary(load.records)})`, load.failed <= allowed),
      check(`no call started after the client saw the drop failed (${failedAfterNoticed})`, failedAfterNoticed === 0),
      check(`the killed greeter's key expired and the client dropped it (${ms(droppedAt && droppedAt - killAt)})`, droppedAt !== undefined),
      check('the survivors stayed registered', lost === 0),
    ],
  };
}

/**
 * From a grpc-js `retrying_call` trace: for every call that ended UNAVAILABLE, how many attempts it made and
 * whether it had been committed (response headers received: grpc-js never retries a committed call).
 */
function explainRetries(log: string): string {
  const calls = new Map<string, { attempts: number; committed: boolean }>();
  const failed: string[] = [];
  for (const line of log.split('\n')) {
    const match = /retrying_call \| \[(\d+)\] (.*)$/.exec(line);
    if (!match) continue;
    const [, id, text] = match;
    const call = calls.get(id) ?? { attempts: 0, committed: false };
    calls.set(id, call);
    const attempt = /for attempt (\d+)/.exec(text);
    if (attempt) call.attempts = Number(attempt[1]);
    if (text.startsWith('Received metadata')) call.committed = true;
    if (/ended with status: code=14/.test(text)) failed.push(id);
  }
  const kinds = new Map<string, number>();
  for (const id of failed) {
    const call = calls.get(id)!;
    const kind = `${call.attempts} attempt(s), ${call.committed ? 'committed (headers received) before failing' : 'not committed'}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].map(([kind, count]) => `${count}x ${kind}`).join('; ') || 'no UNAVAILABLE in the trace';
}

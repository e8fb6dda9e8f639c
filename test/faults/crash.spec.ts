// One replica crashes (kill -9) under load, with and without a retry policy on the client.
import { describe } from 'vitest';
import { epochNow, type CallRecord, type LoadResult } from '../support/processes.js';
import { sleep, sleepUntil } from '../support/wait.js';
import { errorSummary, ms, whenDropped, whenSampled } from './observe.js';
import { fatesOf, stayed } from './registry-sampler.js';
import { LONG_SCENARIO_TIMEOUT_MS, check, outcomeOf, scenarioTest } from './scenario-runner.js';
import { LOAD, TTL_MS, type Scenario } from './scenario.js';

/** A client notices a dead peer when its connection drops: on loopback within milliseconds, allowed 1 s here. */
const NOTICE_MS = 1_000;

describe.concurrent('a replica crashes under load', () => {
  scenarioTest(
    {
      name: '8a. kill -9 of one greeter under load, no retry policy',
      bound:
        'every failed call had been routed to the killed greeter (the peer grpc-js sent it to, read by a client interceptor); ' +
        `no call started later than ${NOTICE_MS} ms after the kill fails`,
    },
    (s) => killOneGreeter(s, false),
    LONG_SCENARIO_TIMEOUT_MS,
  );

  scenarioTest(
    {
      name: '8b. kill -9 of one greeter under load, retry policy on UNAVAILABLE',
      bound:
        'every failed call is one grpc-js could not retry: its response headers had arrived before the kill cut it ' +
        '(client retry policy: 3 attempts on UNAVAILABLE; a committed call is never retried), and at most 3 such calls',
    },
    (s) => killOneGreeter(s, true),
    LONG_SCENARIO_TIMEOUT_MS,
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
  const goneAt = await whenSampled(sampler, victim.key, false, TTL_MS + 3_000);
  const droppedAt = await whenDropped(client, victim.key, TTL_MS + 3_000);
  s.mark(`key gone ${ms(goneAt && goneAt - killAt)}, dropped by the client ${ms(droppedAt && droppedAt - killAt)} after the kill`);
  await sleepUntil((droppedAt ?? Date.now()) + 500);
  const load: LoadResult = await client.stopLoad();
  await sampler.stop();
  s.keep('load', { killAt, victim: victim.address, records: load.records });

  // Where each call went comes from the client itself (the peer of its connection), so which failures the crash
  // explains does not depend on when the client noticed it.
  const failures = load.records.filter((r) => r.a === undefined);
  const routedToVictim = (r: CallRecord): boolean => (r.a ?? r.p) === victim.address;
  const peerKnown = load.records.filter((r) => r.a !== undefined).every((r) => r.p === r.a);
  const elsewhere = failures.filter((r) => !routedToVictim(r));
  const lateFailures = failures.filter((r) => r.s > killAt + NOTICE_MS);
  const inFlightAtKill = load.records.filter((r) => routedToVictim(r) && r.s <= killAt && r.t > killAt).length;
  const sentAfterKill = load.records.filter((r) => routedToVictim(r) && r.s > killAt);
  const lastSentToVictim = sentAfterKill.length > 0 ? Math.max(...sentAfterKill.map((r) => r.s)) - killAt : undefined;
  const noticedAt = failures.length > 0 ? Math.min(...failures.map((r) => r.t)) : undefined;
  const retried = load.records.filter((r) => r.s <= killAt && r.t > killAt && r.a !== undefined && r.a !== victim.address && r.t - r.s > 3 * KILL_LOAD.delayMs).length;
  const lastFailure = failures.length > 0 ? Math.max(...failures.map((r) => r.t)) - killAt : 0;
  const lost = fatesOf(sampler.samples, others, load.started).filter((fate) => !stayed(fate)).length;
  // Without retries a call the victim had (in flight at the kill, or sent to it before the client noticed) cannot succeed.
  // With retries, only a call already committed (headers received) when the connection dropped: grpc-js never retries it.
  const trace = withRetry ? retryTrace(s.fullOutput(client.proc)) : undefined;
  const allowed = trace ? Math.min(trace.committedFailures, MAX_COMMITTED_FAILURES) : inFlightAtKill + sentAfterKill.filter((r) => r.s <= killAt + NOTICE_MS).length;
  const peers = new Map<string, number>();
  for (const r of elsewhere) peers.set(r.p ?? 'none', (peers.get(r.p ?? 'none') ?? 0) + 1);
  const explained = trace && failures.length > 0 ? ` [grpc-js trace of the failed calls: ${trace.summary}]` : '';
  return outcomeOf(load, {
    allowedFailed: allowed,
    registrationsLost: lost,
    recoveryMs: lastFailure,
    details:
      `calls routed to the killed greeter: ${inFlightAtKill} in flight at the kill, ${sentAfterKill.length} sent after it ` +
      `(the last ${ms(lastSentToVictim)} after the kill); ${load.failed} failed (${failures.length - elsewhere.length} of them routed to the killed greeter, ` +
      `${lateFailures.length} started more than ${NOTICE_MS} ms after the kill); the first failure ended ${ms(noticedAt && noticedAt - killAt)} after the kill` +
      `${withRetry ? `; ${retried} calls in flight at the kill finished on a survivor after a retry` : ''}; ` +
      `key expired ${ms(goneAt && goneAt - killAt)}, dropped by the client ${ms(droppedAt && droppedAt - killAt)} after the kill; calls ${load.calls} (${errorSummary(load.records)})${explained}`,
    checks: [
      check(`the interceptor's peer matches the serving address on every successful call (${peerKnown})`, peerKnown),
      check(
        `every failed call had been routed to the killed greeter (${elsewhere.length} elsewhere: ${[...peers].map(([peer, count]) => `${count}x ${peer}`).join(', ') || 'none'})`,
        elsewhere.length === 0,
      ),
      check(`no call started more than ${NOTICE_MS} ms after the kill failed (${lateFailures.length})`, lateFailures.length === 0),
      check(`failed ${load.failed} <= allowed ${allowed} (${errorSummary(load.records)})`, load.failed <= allowed),
      ...(trace ? [check(`every failure grpc-js could have retried was retried (${trace.uncommittedFailures} uncommitted failures)`, trace.uncommittedFailures === 0)] : []),
      check(`the killed greeter's key expired and the client dropped it (${ms(droppedAt && droppedAt - killAt)})`, droppedAt !== undefined),
      check('the survivors stayed registered', lost === 0),
    ],
  });
}

/** Calls cut after their headers arrived that one kill may fail even with retries: a few replies were mid-write. */
const MAX_COMMITTED_FAILURES = 3;

interface RetryTrace {
  readonly committedFailures: number;
  readonly uncommittedFailures: number;
  readonly summary: string;
}

/**
 * From a grpc-js `retrying_call` trace: for every call that ended UNAVAILABLE, how many attempts it made and
 * whether it had been committed (response headers received: grpc-js never retries a committed call).
 */
function retryTrace(log: string): RetryTrace {
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
  let committedFailures = 0;
  for (const id of failed) {
    const call = calls.get(id)!;
    if (call.committed) committedFailures += 1;
    const kind = `${call.attempts} attempt(s), ${call.committed ? 'committed (headers received) before failing' : 'not committed'}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const summary = [...kinds].map(([kind, count]) => `${count}x ${kind}`).join('; ') || 'no UNAVAILABLE in the trace';
  return { committedFailures, uncommittedFailures: failed.length - committedFailures, summary };
}

// Per-client `retry` and `timeoutMs` against real grpc-js servers fed through an in-memory instance
// list (no etcd), and option validation that fails at createClient naming the field.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { DiscoveredClientOptions } from '../../libs/etcd-discovery/src/client/discovered-client-options.interface.js';
import { InvalidDiscoveryOptionsError } from '../../libs/etcd-discovery/src/options/invalid-options.error.js';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { balancingFixture, callOnce, firstReply, instanceOf, runLoad, SERVICE, type LoadResult } from '../support/grpc-servers.js';
import { sleep, waitFor } from '../support/wait.js';

const fx = balancingFixture();

interface ForceShutRun {
  readonly result: LoadResult;
  /** Calls the victim had received and not answered when it was force-shut. */
  readonly pendingOnVictim: number;
  /** performance.now() of the forceShutdown. */
  readonly killedAt: number;
}

/**
 * 16 callers for 1.5 s against 3 servers answering after 5 ms; one is force-shut at 500 ms and stays
 * listed (a crash the registry has not noticed yet). With `holdFirst`, the victim stops answering
 * 100 ms before, so every call in flight on it is waiting, none half-answered, when it goes.
 */
async function forceShutOneUnderLoad(options: Partial<DiscoveredClientOptions>, holdFirst: boolean): Promise<ForceShutRun> {
  const servers = await fx.startServers(3, { delayMs: 5 });
  fx.source().set(servers.map((server) => instanceOf(server)));
  const client = fx.client(options);
  await firstReply(client);
  const victim = servers[2];
  const load = runLoad(client, { concurrency: 16, durationMs: 1_500 });
  if (holdFirst) {
    await sleep(400);
    victim.behaviour = { ...victim.behaviour, hold: true };
    await sleep(100);
  } else {
    await sleep(500);
  }
  const pendingOnVictim = victim.pending;
  const killedAt = performance.now();
  victim.forceShutdown();
  return { result: await load, pendingOnVictim, killedAt };
}

/** The load went on past the kill (a count, not a rate: a loaded machine makes fewer calls in the same time). */
function expectLoadAfterKill({ result, killedAt }: ForceShutRun): void {
  expect(result.outcomes.filter((outcome) => outcome.at > killedAt).length).toBeGreaterThan(50);
}

function describeRun(label: string, { result, pendingOnVictim }: ForceShutRun): void {
  const details = [...new Set(result.outcomes.flatMap((o) => (o.ok ? [] : [o.details])))];
  console.log(`${label}: ${result.outcomes.length} calls, failures ${JSON.stringify(result.failures)}, ${pendingOnVictim} pending on the victim; details: ${details.join(' | ') || '-'}`);
}

describe('retry with real servers', () => {
  it('retry { maxAttempts: 3 }: a server force-shut while holding calls mid-load costs no call', async () => {
    const run = await forceShutOneUnderLoad({ retry: { maxAttempts: 3 } }, true);
    describeRun('forceShutdown (calls held) with retry { maxAttempts: 3 }', run);
    expect(run.pendingOnVictim).toBeGreaterThan(0); // the test is not vacuous
    expectLoadAfterKill(run);
    expect(run.result.failed).toBe(0);
  });

  it('retry on UNAVAILABLE and CANCELLED: a server force-shut while holding calls mid-load costs no call', async () => {
    const run = await forceShutOneUnderLoad({ retry: { maxAttempts: 3, retryableStatusCodes: ['UNAVAILABLE', 'CANCELLED'] } }, true);
    describeRun('forceShutdown (calls held) with retry on UNAVAILABLE + CANCELLED', run);
    expect(run.pendingOnVictim).toBeGreaterThan(0);
    expectLoadAfterKill(run);
    expect(run.result.failed).toBe(0);
  });

  it('without retry: the calls held by the force-shut server fail (counted)', async () => {
    const run = await forceShutOneUnderLoad({}, true);
    describeRun('forceShutdown (calls held) without retry', run);
    expectLoadAfterKill(run);
    expect(run.result.failed).toBeLessThanOrEqual(run.pendingOnVictim);
  });

  it('force-shut at an arbitrary instant, retry on CANCELLED: only calls already being answered can fail', async () => {
    // grpc-js commits a call once response headers arrive and never retries it after that: a reply
    // cut between its message and its trailers by forceShutdown ends CANCELLED whatever the policy.
    const run = await forceShutOneUnderLoad({ retry: { maxAttempts: 3, retryableStatusCodes: ['UNAVAILABLE', 'CANCELLED'] } }, false);
    describeRun('forceShutdown (arbitrary instant) with retry on UNAVAILABLE + CANCELLED', run);
    const failures = run.result.outcomes.filter((o) => !o.ok);
    expectLoadAfterKill(run);
    expect(failures.every((o) => !o.ok && o.code === Status.CANCELLED)).toBe(true);
    expect(failures.every((o) => o.at - run.killedAt < 200)).toBe(true);
    expect(failures.length).toBeLessThanOrEqual(16);
  });

  it('p2c_ewma + retry: attempts failing UNAVAILABLE are retried on another instance, no call fails', async () => {
    const [good1, good2] = await fx.startServers(2);
    const [bad] = await fx.startServers(1, { code: Status.UNAVAILABLE });
    fx.source().set([good1, good2, bad].map((server) => instanceOf(server)));
    const client = fx.client({ loadBalancing: 'p2c_ewma', retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 10 } });
    await firstReply(client);
    const result = await runLoad(client, { concurrency: 8, durationMs: 2_500 });
    console.log(`p2c_ewma + retry with an UNAVAILABLE server: bad got ${bad.calls} attempts, ${result.outcomes.length} calls, failures ${JSON.stringify(result.failures)}`);
    expect(bad.calls).toBeGreaterThan(0); // it was tried (the test is not vacuous)...
    expect(result.failed).toBe(0); // ...and each such attempt was retried elsewhere
  });

  it('round_robin + retry: attempts are independent picks, so a call fails only if all 3 land on the bad instance', async () => {
    // grpc-js gives a balancer no way to know which instance a previous attempt used: under
    // concurrency, round robin sends each attempt to whichever instance is next, (1/3)^3 = 3.7 %.
    const [good1, good2] = await fx.startServers(2);
    const [bad] = await fx.startServers(1, { code: Status.UNAVAILABLE });
    fx.source().set([good1, good2, bad].map((server) => instanceOf(server)));
    const withRetry = fx.client({ retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 10 } });
    const without = fx.client({});
    await waitFor(async () => (await callOnce(withRetry)).ok && (await callOnce(without)).ok, 5_000, { what: 'a first reply' });
    const retried = await runLoad(withRetry, { concurrency: 8, calls: 1_500 });
    const plain = await runLoad(without, { concurrency: 8, calls: 1_500 });
    const retriedPercent = (retried.failed * 100) / retried.outcomes.length;
    const plainPercent = (plain.failed * 100) / plain.outcomes.length;
    console.log(`round_robin with an UNAVAILABLE server: ${retriedPercent.toFixed(2)}% failed with retry (3 attempts), ${plainPercent.toFixed(2)}% without`);
    expect(Math.abs(plainPercent - 100 / 3)).toBeLessThanOrEqual(5);
    expect(retriedPercent).toBeLessThan(8);
  });

  it('does not retry business errors (NOT_FOUND is not in the retryable codes)', async () => {
    const [server] = await fx.startServers(1, { code: Status.NOT_FOUND });
    fx.source().set([instanceOf(server)]);
    const outcome = await callOnce(fx.client({ retry: { maxAttempts: 3 } }));
    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? undefined : outcome.code).toBe(Status.NOT_FOUND);
    expect(server.calls).toBe(1);
  });
});

describe('timeoutMs with real servers', () => {
  it('timeoutMs 100 against a server taking 300 ms fails with DEADLINE_EXCEEDED at about 100 ms', async () => {
    const [server] = await fx.startServers(1, { delayMs: 300 });
    fx.source().set([instanceOf(server)]);
    const client = fx.client({ timeoutMs: 100 });
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await callOnce(client, 5_000));
    console.log(`timeoutMs 100 vs 300 ms server: ${outcomes.map((o) => (o.ok ? 'OK' : `${Status[o.code]} ${o.ms.toFixed(0)} ms`)).join(', ')}`);
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      if (outcome.ok) continue;
      expect(outcome.code).toBe(Status.DEADLINE_EXCEEDED);
      expect(outcome.ms).toBeGreaterThanOrEqual(90);
      expect(outcome.ms).toBeLessThan(300); // before the 300 ms reply could arrive
    }
  });

  it('timeoutMs leaves calls that finish in time alone', async () => {
    const [server] = await fx.startServers(1, { delayMs: 20 });
    fx.source().set([instanceOf(server)]);
    const outcome = await callOnce(fx.client({ timeoutMs: 500 }));
    expect(outcome.ok).toBe(true);
  });
});

describe('client option validation at createClient', () => {
  const base = { package: 'greeter', protoPath: GREETER_PROTO_PATH };

  it.each<[string, Record<string, unknown>, string | string[]]>([
    ['an unknown policy', { loadBalancing: 'least_request' }, 'client options.loadBalancing'],
    ['retry.maxAttempts 9', { retry: { maxAttempts: 9 } }, 'client options.retry.maxAttempts'],
    ['retry.maxAttempts 1', { retry: { maxAttempts: 1 } }, 'client options.retry.maxAttempts'],
    ['an unknown retryable code', { retry: { maxAttempts: 3, retryableStatusCodes: ['NOPE'] } }, 'client options.retry.retryableStatusCodes'],
    ['a bad semver range', { select: { version: 'not a range' } }, 'client options.select.version'],
    ['a non-scalar metadata selector', { select: { metadata: { zone: ['a'] } } }, 'client options.select.metadata'],
    ['a negative timeout', { timeoutMs: -1 }, 'client options.timeoutMs'],
    ['a zero outlier interval', { outlierDetection: { intervalMs: 0 } }, 'client options.outlierDetection.intervalMs'],
    // grpc-js refuses percentages over 100 only when the channel starts, then silently uses pick_first.
    ['an outlier threshold over 100 %', { outlierDetection: { failurePercentageEjection: { threshold: 150 } } }, 'client options.outlierDetection.failurePercentageEjection.threshold'],
    ['an enforcement percentage over 100 %', { outlierDetection: { successRateEjection: { enforcementPercentage: 101 } } }, 'client options.outlierDetection.successRateEjection.enforcementPercentage'],
    // grpc-js refuses outlier_detection over pick_first when the channel starts, and silently falls back to plain pick_first.
    ['outlier detection around pick_first', { loadBalancing: 'pick_first', outlierDetection: { failurePercentageEjection: {} } }, ['client options.outlierDetection', 'client options.loadBalancing']],
  ])('%s: %j -> InvalidDiscoveryOptionsError naming %s', (_label, options, fields) => {
    expect.assertions(4);
    try {
      fx.factory().createClient(SERVICE, { ...base, ...options } as DiscoveredClientOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
      const { field } = error as InvalidDiscoveryOptionsError;
      expect([fields].flat()).toContain(field);
      expect((error as Error).message).toContain(`"${field}"`);
      expect((error as Error).message).toMatch(/: \S/); // followed by the fix
    }
  });
});

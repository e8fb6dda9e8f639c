import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DECAY_MS, EndpointStats, MIN_SAMPLE_WEIGHT } from './endpoint-stats.js';

const TOLERANCE = 1e-9;

/** One completed call that took `rtt` ms and ended at `at`. */
function complete(stats: EndpointStats, at: number, rtt: number, code: Status = Status.OK): void {
  stats.onEnded(code, at - rtt, at);
}

/** go-zero's weight exp(-td / 10 s), capped so a new sample weighs at least MIN_SAMPLE_WEIGHT. */
function decay(tdMs: number): number {
  return Math.min(Math.exp(-tdMs / 10_000), 1 - MIN_SAMPLE_WEIGHT);
}

function expectClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(TOLERANCE);
}

/** The codes go-zero counts against the endpoint; every other code is the request's fault. */
const ENDPOINT_FAILURES = [
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
  Status.UNIMPLEMENTED,
  Status.RESOURCE_EXHAUSTED,
];

describe('EndpointStats', () => {
  it('starts idle, healthy, not ejected, with the lowest load', () => {
    const stats = new EndpointStats();
    expect(stats.inflight).toBe(0);
    expect(stats.lagMs).toBe(0);
    expect(stats.success).toBe(1_000);
    expect(stats.isHealthy(0)).toBe(true);
    expect(stats.isEjected(0)).toBe(false);
    expect(stats.load()).toBe(1);
  });

  it('uses a 10 s decay time', () => {
    expect(DECAY_MS).toBe(10_000);
  });

  it('replaces the initial zero with the first sample instead of averaging with it', () => {
    const stats = new EndpointStats();
    complete(stats, 50_000, 40);
    expect(stats.lagMs).toBe(40);
    expect(stats.success).toBe(1_000);
  });

  it('decays latency and success as go-zero, w = exp(-td / 10 s), but weighs a new sample at least 0.1', () => {
    expect(MIN_SAMPLE_WEIGHT).toBe(0.1);
    const stats = new EndpointStats();
    // (end time, rtt ms, code); td is the time since the previous completion.
    const t1 = 100_000;
    complete(stats, t1, 40);
    let lag = 40;
    let success = 1_000;
    expect(stats.lagMs).toBe(lag);

    // td 500 ms, rtt 10, OK: exp(-0.05) = 0.951 is over the cap, so w = 0.9.
    complete(stats, t1 + 500, 10);
    let w = decay(500);
    expect(w).toBe(0.9);
    lag = 40 * w + 10 * (1 - w);
    success = 1_000 * w + 1_000 * (1 - w);
    expectClose(stats.lagMs, lag);
    expectClose(stats.lagMs, 37); // the same, by hand
    expectClose(stats.success, success);

    // td 2 s, rtt 100, DEADLINE_EXCEEDED: latency still counts, success takes a 0.
    complete(stats, t1 + 2_500, 100, Status.DEADLINE_EXCEEDED);
    w = decay(2_000);
    expect(w).toBe(Math.exp(-0.2));
    lag = lag * w + 100 * (1 - w);
    success = success * w + 0 * (1 - w);
    expectClose(stats.lagMs, lag);
    expectClose(stats.success, success);
    expectClose(stats.success, 818.7307530779818);

    // td 0 (same millisecond): time decay alone would ignore the sample; the cap still takes 10% of it.
    complete(stats, t1 + 2_500, 5);
    lag = lag * 0.9 + 5 * 0.1;
    success = success * 0.9 + 1_000 * 0.1;
    expectClose(stats.lagMs, lag);
    expectClose(stats.success, success);

    // td 10 s, rtt 20, INTERNAL.
    complete(stats, t1 + 12_500, 20, Status.INTERNAL);
    w = Math.exp(-1);
    lag = lag * w + 20 * (1 - w);
    success = success * w;
    expectClose(stats.lagMs, lag);
    expectClose(stats.success, success);

    // td 60 s, rtt 30, OK: the old values have all but faded.
    complete(stats, t1 + 72_500, 30);
    w = Math.exp(-6);
    lag = lag * w + 30 * (1 - w);
    success = success * w + 1_000 * (1 - w);
    expectClose(stats.lagMs, lag);
    expectClose(stats.success, success);
  });

  it('keeps averaging after a first sample of 0 ms (sub-millisecond calls on loopback)', () => {
    // The first call took under a millisecond, so its rtt reads 0. The next sample must still be
    // averaged with its decay weight, not replace the average as if it were the first.
    const stats = new EndpointStats();
    complete(stats, 100_000, 0);
    complete(stats, 100_001, 0, Status.INTERNAL);
    const w = decay(1);
    expectClose(stats.success, 1_000 * w);
    expect(stats.isHealthy(100_001)).toBe(true);
    complete(stats, 100_002, 30);
    expectClose(stats.lagMs, 30 * (1 - w));
  });

  it.each(Object.values(Status).filter((code): code is Status => typeof code === 'number').map((code) => [Status[code], code]))(
    'counts %s against the endpoint only if it is in go-zero\'s list',
    (_name, code) => {
      const stats = new EndpointStats();
      complete(stats, 100_000, 10);
      complete(stats, 105_000, 10, code);
      const w = Math.exp(-0.5);
      const expected = ENDPOINT_FAILURES.includes(code) ? 1_000 * w : 1_000;
      expectClose(stats.success, expected);
    },
  );

  it.each([
    ['NOT_FOUND', Status.NOT_FOUND],
    ['INVALID_ARGUMENT', Status.INVALID_ARGUMENT],
    ['FAILED_PRECONDITION', Status.FAILED_PRECONDITION],
    ['PERMISSION_DENIED', Status.PERMISSION_DENIED],
  ])('never makes an endpoint unhealthy or ejected for business errors (%s), however many', (_name, code) => {
    const stats = new EndpointStats();
    for (let i = 0; i < 1_000; i++) complete(stats, 100_000 + i * 10, 1, code);
    expect(stats.success).toBe(1_000);
    expect(stats.isHealthy(110_000)).toBe(true);
    expect(stats.isEjected(110_000)).toBe(false);
  });

  it('is healthy only while success is above 500', () => {
    const stats = new EndpointStats();
    stats.success = 500.000001;
    expect(stats.isHealthy(0)).toBe(true);
    stats.success = 500;
    expect(stats.isHealthy(0)).toBe(false);
    stats.success = 0;
    expect(stats.isHealthy(0)).toBe(false);
  });

  it('goes unhealthy after enough failures and recovers with successes', () => {
    const stats = new EndpointStats();
    let now = 100_000;
    complete(stats, now, 1);
    let failures = 0;
    while (stats.isHealthy(now)) {
      now += 1_000;
      complete(stats, now, 1, Status.INTERNAL);
      failures += 1;
    }
    // 1000 * exp(-0.1)^n <= 500  <=>  n >= 10 ln 2 = 6.93
    expect(failures).toBe(7);
    let successes = 0;
    while (!stats.isHealthy(now)) {
      now += 1_000;
      complete(stats, now, 1);
      successes += 1;
    }
    expect(successes).toBeGreaterThan(0);
    expect(successes).toBeLessThanOrEqual(7);
  });

  it('computes load as (lag in ns + 1) * (inflight + 1), linear in the latency', () => {
    const stats = new EndpointStats();
    stats.lagMs = 4;
    expect(stats.load()).toBe(4_000_001);
    stats.onStarted();
    stats.onStarted();
    expect(stats.inflight).toBe(2);
    expect(stats.load()).toBe(12_000_003);
    stats.lagMs = 0.5;
    expect(stats.load()).toBe(500_001 * 3);
  });

  it('counts calls in flight and never below zero', () => {
    const stats = new EndpointStats();
    stats.onStarted();
    stats.onStarted();
    stats.onStarted();
    complete(stats, 1_000, 1);
    expect(stats.inflight).toBe(2);
    complete(stats, 1_001, 1);
    complete(stats, 1_002, 1);
    complete(stats, 1_003, 1);
    expect(stats.inflight).toBe(0);
  });

  describe('UNAVAILABLE ejection', () => {
    it('ejects at once for 1 s, then 2 s, 4 s ... capped at 30 s', () => {
      const stats = new EndpointStats();
      let now = 100_000;
      const durations: number[] = [];
      for (let i = 0; i < 8; i++) {
        complete(stats, now, 1, Status.UNAVAILABLE);
        expect(stats.isEjected(now)).toBe(true);
        expect(stats.isHealthy(now)).toBe(false);
        let until = now;
        while (stats.isEjected(until)) until += 1;
        durations.push(until - now);
        now = until;
      }
      expect(durations).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    });

    it('is over exactly when the back-off has passed', () => {
      const stats = new EndpointStats();
      complete(stats, 10_000, 1, Status.UNAVAILABLE);
      expect(stats.isEjected(10_999)).toBe(true);
      expect(stats.isEjected(11_000)).toBe(false);
    });

    it('starts again from 1 s after an OK', () => {
      const stats = new EndpointStats();
      complete(stats, 10_000, 1, Status.UNAVAILABLE);
      complete(stats, 11_000, 1, Status.UNAVAILABLE);
      complete(stats, 13_000, 1, Status.UNAVAILABLE);
      expect(stats.isEjected(16_999)).toBe(true); // 4 s
      complete(stats, 17_000, 1);
      complete(stats, 17_500, 1, Status.UNAVAILABLE);
      expect(stats.isEjected(18_499)).toBe(true);
      expect(stats.isEjected(18_500)).toBe(false);
    });

    it('counts a burst of UNAVAILABLE from calls already in flight as one ejection, not one doubling per call', () => {
      // 16 concurrent calls were on the endpoint when it went down: they all fail within 3 ms.
      const stats = new EndpointStats();
      for (let i = 0; i < 16; i++) complete(stats, 10_000 + (i % 3), 1, Status.UNAVAILABLE);
      expect(stats.isEjected(10_500)).toBe(true);
      expect(stats.isEjected(11_100)).toBe(false); // about 1 s, not 30 s
      // The next ejection, after a probe fails again, doubles to 2 s.
      complete(stats, 11_500, 1, Status.UNAVAILABLE);
      expect(stats.isEjected(13_499)).toBe(true);
      expect(stats.isEjected(13_600)).toBe(false);
    });

    it.each([
      ['DEADLINE_EXCEEDED', Status.DEADLINE_EXCEEDED],
      ['INTERNAL', Status.INTERNAL],
      ['RESOURCE_EXHAUSTED', Status.RESOURCE_EXHAUSTED],
      ['NOT_FOUND', Status.NOT_FOUND],
    ])('does not eject for %s', (_name, code) => {
      const stats = new EndpointStats();
      complete(stats, 10_000, 1, code);
      expect(stats.isEjected(10_000)).toBe(false);
    });
  });
});

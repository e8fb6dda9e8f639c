import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { EndpointStats, FORCE_PICK_MS } from './endpoint-stats.js';
import { P2cEwmaConfig, P2C_EWMA_POLICY, pickP2c, type P2cCandidate } from './p2c-ewma.balancer.js';
import { seededRandom } from '../../../../test/support/seeded-random.js';

const NOW = 1_000_000;

interface Shape {
  lagMs?: number;
  inflight?: number;
  success?: number;
  lastPickedAt?: number;
}

function candidate(key: string, shape: Shape = {}): P2cCandidate {
  const stats = new EndpointStats();
  stats.lagMs = shape.lagMs ?? 1;
  stats.inflight = shape.inflight ?? 0;
  stats.success = shape.success ?? 1_000;
  stats.lastPickedAt = shape.lastPickedAt ?? NOW; // picked just now: no force pick unless a test asks
  return { key, stats };
}

function eject(target: P2cCandidate, at = NOW - 10): void {
  target.stats.onEnded(Status.UNAVAILABLE, at - 1, at); // ejected for 1 s from `at`
  target.stats.lastPickedAt = NOW;
}

/**
 * A `random` that makes pickP2c draw the given index pairs from a pool of `size`, in order
 * (pickP2c: a = floor(r * n), b = a + 1 + floor(r' * (n - 1)) mod n). Counts its calls.
 */
function drawing(size: number, ...pairs: [number, number][]): (() => number) & { calls: number } {
  const values = pairs.flatMap(([a, b]) => [(a + 0.5) / size, (((b - a - 1 + size) % size) + 0.5) / (size - 1)]);
  const random = Object.assign(
    () => {
      const value = values[random.calls % values.length];
      random.calls += 1;
      return value;
    },
    { calls: 0 },
  );
  return random;
}


describe('pickP2c', () => {
  it('checks that the drawing helper draws what it says', () => {
    const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 2 }), candidate('c', { lagMs: 3 })];
    // One candidate per pair is made the clear loser, so the pick reveals the pair.
    for (const [a, b] of [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]] as [number, number][]) {
      const low = Math.min(a, b);
      expect(pickP2c(pool, NOW, drawing(3, [a, b])).key).toBe(pool[low].key);
    }
  });

  it.each([
    ['a', 'b', 'a'],
    ['b', 'c', 'c'],
    ['c', 'a', 'a'],
  ])('of the pair %s, %s takes the lower load (%s), never one not drawn', (first, second, expected) => {
    // Loads (lag in ns + 1, nothing in flight): a ~1e6 (1 ms), b ~1e8 (100 ms), c ~1e7 (10 ms).
    const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100 }), candidate('c', { lagMs: 10 })];
    const index = (key: string): number => pool.findIndex((c) => c.key === key);
    expect(pickP2c(pool, NOW, drawing(3, [index(first), index(second)])).key).toBe(expected);
  });

  it('counts calls in flight: a fast endpoint with a long queue loses to a slower idle one', () => {
    // a: 1 ms x 201; b: 4 ms x 1.
    const pool = [candidate('a', { lagMs: 1, inflight: 200 }), candidate('b', { lagMs: 4 })];
    expect(pickP2c(pool, NOW, drawing(2, [0, 1])).key).toBe('b');
  });

  it('weighs latency linearly: 8 calls queued at 2 ms (18 ms) beat an idle endpoint at 22 ms, 11 queued (24 ms) do not', () => {
    // With go-zero's sqrt(latency) the idle 22 ms endpoint would win from 3 queued calls on: sqrt(22) < 4 x sqrt(2).
    const idleSlow = candidate('slow', { lagMs: 22 });
    expect(pickP2c([candidate('fast', { lagMs: 2, inflight: 8 }), idleSlow], NOW, drawing(2, [0, 1])).key).toBe('fast');
    expect(pickP2c([candidate('fast', { lagMs: 2, inflight: 11 }), idleSlow], NOW, drawing(2, [0, 1])).key).toBe('slow');
  });

  it('marks only the picked endpoint as picked now', () => {
    const pool = [candidate('a', { lagMs: 1, lastPickedAt: NOW - 500 }), candidate('b', { lagMs: 9, lastPickedAt: NOW - 500 })];
    pickP2c(pool, NOW, drawing(2, [0, 1]));
    expect(pool[0].stats.lastPickedAt).toBe(NOW);
    expect(pool[1].stats.lastPickedAt).toBe(NOW - 500);
  });

  it('force-picks the higher-load endpoint of the pair when it was not picked for over 1 s, once', () => {
    expect(FORCE_PICK_MS).toBe(1_000);
    const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100, lastPickedAt: NOW - 1_001 })];
    expect(pickP2c(pool, NOW, drawing(2, [0, 1])).key).toBe('b');
    expect(pool[1].stats.lastPickedAt).toBe(NOW);
    expect(pickP2c(pool, NOW + 1, drawing(2, [0, 1])).key).toBe('a');
  });

  it('does not force-pick at exactly 1 s', () => {
    const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100, lastPickedAt: NOW - 1_000 })];
    expect(pickP2c(pool, NOW, drawing(2, [0, 1])).key).toBe('a');
  });

  it('draws two distinct endpoints: the highest load is never picked, whatever random says', () => {
    for (let size = 2; size <= 6; size++) {
      const pool = Array.from({ length: size }, (_, i) => candidate(`e${i}`, { lagMs: i === size - 1 ? 1_000 : 1 + i }));
      const random = seededRandom(size);
      for (let pick = 0; pick < 2_000; pick++) expect(pickP2c(pool, NOW, random).key).not.toBe(`e${size - 1}`);
    }
  });

  it('draws two distinct endpoints at the edges of random: 0 and just below 1', () => {
    const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100 })];
    for (const value of [0, 0.25, 0.5, 0.75, 0.999_999_999]) expect(pickP2c(pool, NOW, () => value).key).toBe('a');
  });

  it('spreads picks over every endpoint when loads are equal', () => {
    const pool = Array.from({ length: 4 }, (_, i) => candidate(`e${i}`));
    const counts = new Map<string, number>();
    const random = seededRandom(7);
    for (let pick = 0; pick < 4_000; pick++) {
      const key = pickP2c(pool, NOW, random).key;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const count of counts.values()) expect(count).toBeGreaterThan(500);
  });

  describe('ejected endpoints', () => {
    it('never picks an ejected endpoint while another is not ejected, even if it has the lowest load', () => {
      const pool = [candidate('a', { lagMs: 0 }), candidate('b', { lagMs: 50 }), candidate('c', { lagMs: 80 })];
      eject(pool[0]);
      pool[0].stats.lagMs = 0;
      const random = seededRandom(1);
      for (let pick = 0; pick < 1_000; pick++) expect(pickP2c(pool, NOW, random).key).not.toBe('a');
    });

    it('never force-picks an ejected endpoint', () => {
      const pool = [candidate('a', { lagMs: 1, lastPickedAt: 0 }), candidate('b', { lagMs: 50 })];
      eject(pool[0]);
      pool[0].stats.lastPickedAt = 0;
      for (let pick = 0; pick < 50; pick++) expect(pickP2c(pool, NOW + pick, seededRandom(pick)).key).toBe('b');
    });

    it('takes the only endpoint left, whatever its load', () => {
      const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 5_000, inflight: 100 })];
      eject(pool[0]);
      expect(pickP2c(pool, NOW, seededRandom(3)).key).toBe('b');
    });

    it('picks among all endpoints when every one is ejected', () => {
      const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100 })];
      eject(pool[0]);
      eject(pool[1]);
      pool[0].stats.lagMs = 1;
      pool[1].stats.lagMs = 100;
      expect(pickP2c(pool, NOW, drawing(2, [1, 0])).key).toBe('a');
    });

    it('considers an endpoint again once its ejection is over', () => {
      const pool = [candidate('a', { lagMs: 1 }), candidate('b', { lagMs: 100 })];
      eject(pool[0], NOW - 1_000);
      expect(pool[0].stats.isEjected(NOW)).toBe(false);
      pool[0].stats.success = 1_000;
      expect(pickP2c(pool, NOW, drawing(2, [0, 1])).key).toBe('a');
    });
  });

  describe('healthy pairs', () => {
    it('draws again (up to 3 pairs) while the pair holds an unhealthy endpoint', () => {
      // b is unhealthy and has the lowest load: it must lose to the redraw.
      const pool = [candidate('a', { lagMs: 10 }), candidate('b', { lagMs: 0, success: 100 }), candidate('c', { lagMs: 5 })];
      const random = drawing(3, [0, 1], [1, 2], [0, 2]);
      expect(pickP2c(pool, NOW, random).key).toBe('c');
      expect(random.calls).toBe(6);
    });

    it('stops at the first healthy pair', () => {
      const pool = [candidate('a', { lagMs: 10 }), candidate('b', { lagMs: 0, success: 100 }), candidate('c', { lagMs: 5 })];
      const random = drawing(3, [0, 2], [1, 2]);
      expect(pickP2c(pool, NOW, random).key).toBe('c');
      expect(random.calls).toBe(2);
    });

    it('uses the third pair after three unhealthy draws, as go-zero', () => {
      const pool = [candidate('a', { lagMs: 10 }), candidate('b', { lagMs: 0, success: 100 }), candidate('c', { lagMs: 5 })];
      const random = drawing(3, [0, 1], [1, 2], [2, 1], [0, 2]);
      expect(pickP2c(pool, NOW, random).key).toBe('b');
      expect(random.calls).toBe(6);
    });

    it('picks an unhealthy endpoint only when all three draws hold it', () => {
      const pool = [candidate('a', { lagMs: 10 }), candidate('b', { lagMs: 0, success: 100 }), candidate('c', { lagMs: 10 })];
      const random = seededRandom(11);
      let unhealthy = 0;
      for (let pick = 0; pick < 3_000; pick++) if (pickP2c(pool, NOW, random).key === 'b') unhealthy += 1;
      // Only when all three pairs drawn hold b: (2/3)^3 = 29.6 % of picks, against 66.7 % without redraws.
      expect(unhealthy / 3_000).toBeGreaterThan(0.25);
      expect(unhealthy / 3_000).toBeLessThan(0.34);
    });
  });

  it('returns the only candidate and marks it picked', () => {
    const only = candidate('a', { lagMs: 1, success: 0, lastPickedAt: 0 });
    expect(pickP2c([only], NOW, () => 0.5)).toBe(only);
    expect(only.stats.lastPickedAt).toBe(NOW);
  });

  it('does not reorder or replace the candidate list', () => {
    const pool = Object.freeze([candidate('a', { lagMs: 9 }), candidate('b', { lagMs: 1 })]);
    pickP2c(pool, NOW, drawing(2, [0, 1]));
    expect(pool.map((c) => c.key)).toEqual(['a', 'b']);
  });
});

describe('P2cEwmaConfig', () => {
  it('accepts an empty config and serializes under the registered name', () => {
    expect(P2cEwmaConfig.createFromJson({}).toJsonObject()).toEqual({ [P2C_EWMA_POLICY]: {} });
    expect(P2cEwmaConfig.createFromJson(undefined).getLoadBalancerName()).toBe(P2C_EWMA_POLICY);
  });

  it.each([[{ choices: 3 }], [null], ['x']])('rejects %j with an error naming the policy', (json) => {
    expect(() => P2cEwmaConfig.createFromJson(json)).toThrow(P2C_EWMA_POLICY);
  });
});

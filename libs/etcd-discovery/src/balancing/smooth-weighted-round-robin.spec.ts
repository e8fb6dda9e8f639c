import { describe, expect, it } from 'vitest';
import { pickSmoothWeighted, pruneSmoothWeightedState, type SmoothWeightedState, type WeightedPeer } from './smooth-weighted-round-robin.js';
import { seededRandom } from '../../../../test/support/seeded-random.js';

const peers = (weights: Record<string, number>): WeightedPeer[] => Object.entries(weights).map(([key, weight]) => ({ key, weight }));

function picks(list: readonly WeightedPeer[], count: number, state: SmoothWeightedState = new Map()): string[] {
  return Array.from({ length: count }, () => pickSmoothWeighted(list, state)!.key);
}


describe('pickSmoothWeighted', () => {
  it('gives exactly c b a c b c, repeating, for weights a:1 b:2 c:3', () => {
    const list = peers({ a: 1, b: 2, c: 3 });
    expect(picks(list, 18)).toEqual(['c', 'b', 'a', 'c', 'b', 'c', 'c', 'b', 'a', 'c', 'b', 'c', 'c', 'b', 'a', 'c', 'b', 'c']);
  });

  it('returns the scores to zero after each full cycle', () => {
    const list = peers({ a: 1, b: 2, c: 3 });
    const state: SmoothWeightedState = new Map();
    picks(list, 6, state);
    expect([...state.values()]).toEqual([0, 0, 0]);
  });

  it('interleaves a heavy peer instead of bunching it (nginx order for 5:1:1)', () => {
    expect(picks(peers({ a: 5, b: 1, c: 1 }), 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it.each([
    [{ a: 1 }],
    [{ a: 1, b: 1, c: 1 }],
    [{ a: 7, b: 3 }],
    [{ a: 100, b: 1, c: 10, d: 0 }],
  ])('gives each peer exactly its weight in every cycle of total weight: %j', (weights) => {
    const list = peers(weights);
    const total = list.reduce((sum, peer) => sum + peer.weight, 0);
    const state: SmoothWeightedState = new Map();
    for (let cycle = 0; cycle < 5; cycle++) {
      const counts: Record<string, number> = Object.fromEntries(list.map((peer) => [peer.key, 0]));
      for (const key of picks(list, total, state)) counts[key] += 1;
      expect(counts).toEqual(weights);
    }
  });

  it('gives exact shares per cycle for 50 generated weight tables', () => {
    const random = seededRandom(42);
    for (let table = 0; table < 50; table++) {
      const size = 1 + Math.floor(random() * 6);
      const weights: Record<string, number> = {};
      for (let i = 0; i < size; i++) weights[`p${i}`] = 1 + Math.floor(random() * 20);
      const list = peers(weights);
      const total = list.reduce((sum, peer) => sum + peer.weight, 0);
      const state: SmoothWeightedState = new Map();
      for (let cycle = 0; cycle < 3; cycle++) {
        const counts: Record<string, number> = Object.fromEntries(list.map((peer) => [peer.key, 0]));
        for (const key of picks(list, total, state)) counts[key] += 1;
        expect(counts, JSON.stringify(weights)).toEqual(weights);
      }
    }
  });

  it('keeps the cycle across picker rebuilds that share the state', () => {
    const state: SmoothWeightedState = new Map();
    const first = picks(peers({ a: 1, b: 2, c: 3 }), 2, state);
    // A rebuilt picker gets new peer objects (same keys) but the same state.
    const rest = picks(peers({ a: 1, b: 2, c: 3 }), 4, state);
    expect([...first, ...rest]).toEqual(['c', 'b', 'a', 'c', 'b', 'c']);
  });

  it('returns undefined for no peers and leaves the state alone', () => {
    const state: SmoothWeightedState = new Map([['x', 3]]);
    expect(pickSmoothWeighted([], state)).toBeUndefined();
    expect([...state]).toEqual([['x', 3]]);
  });

  it('does not mutate the peers', () => {
    const list = Object.freeze(peers({ a: 1, b: 2 }).map((peer) => Object.freeze(peer)));
    expect(() => picks(list, 3)).not.toThrow();
    expect(list).toEqual(peers({ a: 1, b: 2 }));
  });
});

describe('pruneSmoothWeightedState', () => {
  it('forgets removed peers and keeps the scores of the others', () => {
    const state: SmoothWeightedState = new Map();
    picks(peers({ a: 1, b: 2, c: 3 }), 2, state); // c then b: a=2, b=-2, c=0
    expect(Object.fromEntries(state)).toEqual({ a: 2, b: -2, c: 0 });
    pruneSmoothWeightedState(state, new Set(['a', 'b']));
    expect(Object.fromEntries(state)).toEqual({ a: 2, b: -2 });
  });

  it('empties the state when no peer is left', () => {
    const state: SmoothWeightedState = new Map([['a', 1], ['b', -1]]);
    pruneSmoothWeightedState(state, new Set());
    expect(state.size).toBe(0);
  });

  it('lets a re-added peer start from zero', () => {
    const state: SmoothWeightedState = new Map();
    picks(peers({ a: 1, b: 2, c: 3 }), 1, state); // a=1, b=2, c=-3
    pruneSmoothWeightedState(state, new Set(['a', 'b']));
    expect(state.has('c')).toBe(false);
    // c comes back with 0 + 3, not -3 + 3: a=2, b=4, c=3, so b is picked.
    expect(pickSmoothWeighted(peers({ a: 1, b: 2, c: 3 }), state)!.key).toBe('b');
    expect(state.get('c')).toBe(3);
  });
});

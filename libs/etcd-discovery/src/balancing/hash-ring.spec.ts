import { describe, expect, it } from 'vitest';
import { hash32, HashRing, POINTS_PER_MEMBER, type RingMember } from './hash-ring.js';
import { seededRandom } from '../../../../test/support/seeded-random.js';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

const members = (count: number, from = 0): RingMember[] => Array.from({ length: count }, (_, i) => ({ key: `10.0.${from + i}.7:50051` }));

function shuffled<T>(list: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

const ownersOf = (ring: HashRing<RingMember>): string[] => KEYS.map((key) => ring.owner(hash32(key)).key);

describe('hash32', () => {
  // Pinned: every process (and every release, during a rolling upgrade) must send a key to the same instance.
  it('gives the same values in every process and release', () => {
    expect([hash32(''), hash32('user-1'), hash32('10.0.0.7:50051#0')]).toEqual([0xab3e7c0b, 0x778f8aec, 0xcb16b76d]);
  });

  it('spreads nearby strings over the whole 32-bit range', () => {
    const values = KEYS.map(hash32);
    const buckets = new Array<number>(16).fill(0);
    for (const value of values) buckets[value >>> 28] += 1;
    // 625 expected per bucket; a weak hash on sequential keys piles them into a few.
    for (const count of buckets) expect(count).toBeGreaterThan(500);
    expect(new Set(values).size).toBeGreaterThan(9_990);
  });
});

describe('HashRing', () => {
  it(`gives each of 10 members 10 % +- 3 % of 10,000 keys (${POINTS_PER_MEMBER} points each)`, () => {
    const counts = new Map<string, number>();
    for (const owner of ownersOf(new HashRing(members(10)))) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    expect(counts.size).toBe(10);
    for (const count of counts.values()) expect(Math.abs(count - 1_000)).toBeLessThanOrEqual(300);
  });

  it('moves only the keys of a member that leaves: about 1/10 of 10,000 keys, whichever of 10 leaves', () => {
    const all = members(10);
    const before = ownersOf(new HashRing(all));
    for (const leaving of all) {
      const after = ownersOf(new HashRing(all.filter((member) => member !== leaving)));
      const moved = KEYS.map((_, i) => i).filter((i) => before[i] !== after[i]);
      // Every moved key was the leaver's, and every key of the leaver moved.
      expect(moved.every((i) => before[i] === leaving.key)).toBe(true);
      expect(moved.length).toBe(before.filter((owner) => owner === leaving.key).length);
      expect(moved.length / KEYS.length).toBeGreaterThanOrEqual(0.07);
      expect(moved.length / KEYS.length).toBeLessThanOrEqual(0.13);
    }
  });

  it('moves only keys to a member that joins: about 1/11 of them', () => {
    const before = ownersOf(new HashRing(members(10)));
    const joining = members(1, 10)[0];
    const after = ownersOf(new HashRing([...members(10), joining]));
    const moved = KEYS.map((_, i) => i).filter((i) => before[i] !== after[i]);
    expect(moved.every((i) => after[i] === joining.key)).toBe(true);
    expect(moved.length / KEYS.length).toBeGreaterThanOrEqual(0.06);
    expect(moved.length / KEYS.length).toBeLessThanOrEqual(0.12);
  });

  it('sends a key to the same member in rings built independently, whatever the order of members', () => {
    const first = new HashRing(members(10));
    for (const seed of [1, 2, 3]) {
      // Fresh member objects in another order, as another process would list them.
      const second = new HashRing(shuffled(members(10), seed));
      expect(ownersOf(second)).toEqual(ownersOf(first));
    }
  });

  describe('pick with bounded loads (factor 1.25)', () => {
    const FACTOR = 1.25;

    it('never returns a member at or over ceil(1.25 x (total + 1) / members), for random loads and keys', () => {
      const ring = new HashRing(members(10));
      const random = seededRandom(7);
      let spilled = 0;
      for (let round = 0; round < 2_000; round++) {
        const loads = new Map(ring.members.map((member) => [member.key, Math.floor(random() * random() * 40)]));
        const total = [...loads.values()].reduce((a, b) => a + b, 0);
        const capacity = Math.ceil((FACTOR * (total + 1)) / ring.members.length);
        const keyHash = hash32(KEYS[round]);
        const picked = ring.pick(keyHash, FACTOR, total, (member) => loads.get(member.key)!);
        expect(loads.get(picked.key)).toBeLessThan(capacity);
        const owner = ring.owner(keyHash);
        // Under capacity the owner keeps its key: no spill without need.
        if (loads.get(owner.key)! < capacity) expect(picked).toBe(owner);
        else spilled += 1;
      }
      // The loads above put owners at capacity often enough that the spill path is exercised.
      expect(spilled).toBeGreaterThan(100);
    });

    it('keeps every member within ceil(1.25 x calls / members) when one hot key takes 30 % of 4,000 calls in flight', () => {
      const ring = new HashRing(members(10));
      const loads = new Map(ring.members.map((member) => [member.key, 0]));
      const random = seededRandom(11);
      let total = 0;
      for (let call = 0; call < 4_000; call++) {
        const key = random() < 0.3 ? 'hot-user' : KEYS[Math.floor(random() * KEYS.length)];
        const picked = ring.pick(hash32(key), FACTOR, total, (member) => loads.get(member.key)!);
        loads.set(picked.key, loads.get(picked.key)! + 1);
        total += 1;
      }
      const max = Math.max(...loads.values());
      expect(max).toBeLessThanOrEqual(Math.ceil((FACTOR * total) / ring.members.length));
      // The hot key's owner is full, so the hot key did spill (to its ring neighbours).
      expect(loads.get(ring.owner(hash32('hot-user')).key)).toBe(max);
    });
  });
});

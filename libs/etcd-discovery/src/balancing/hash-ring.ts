/**
 * A consistent-hash ring with bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with
 * Bounded Loads", 2017): a key goes to the first member clockwise from its hash whose load is under
 * `ceil(factor * (totalLoad + 1) / members)`, so no member takes more than `factor` times the average
 * and a hot key spills to its ring neighbours, not to one random member.
 */

/** Points per member: enough that 10 members each own 10 % +- ~3 % of the ring. */
export const POINTS_PER_MEMBER = 160;

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's finaliser so nearby strings land far apart. Same in every process. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Ring points of one member, by its key (the address): computed once per member, reused across rebuilds. */
const pointsCache = new Map<string, Uint32Array>();
const MAX_CACHED_MEMBERS = 10_000;

function pointsOf(key: string): Uint32Array {
  let points = pointsCache.get(key);
  if (!points) {
    points = new Uint32Array(POINTS_PER_MEMBER);
    for (let i = 0; i < POINTS_PER_MEMBER; i++) points[i] = hash32(`${key}#${i}`);
    if (pointsCache.size >= MAX_CACHED_MEMBERS) pointsCache.clear();
    pointsCache.set(key, points);
  }
  return points;
}

export interface RingMember {
  readonly key: string;
}

export class HashRing<T extends RingMember> {
  /** Sorted point positions, and the member index at each. */
  private readonly positions: Uint32Array;
  private readonly owners: Uint32Array;

  constructor(readonly members: readonly T[]) {
    const total = members.length * POINTS_PER_MEMBER;
    const order = new Array<[number, number]>(total);
    members.forEach((member, index) => {
      const points = pointsOf(member.key);
      for (let i = 0; i < POINTS_PER_MEMBER; i++) order[index * POINTS_PER_MEMBER + i] = [points[i], index];
    });
    // Ties (vanishingly rare) are broken by member key so every process builds the same ring.
    order.sort((a, b) => a[0] - b[0] || (members[a[1]].key < members[b[1]].key ? -1 : 1));
    this.positions = Uint32Array.from(order, ([position]) => position);
    this.owners = Uint32Array.from(order, ([, owner]) => owner);
  }

  /** The member owning `keyHash`, ignoring load. */
  owner(keyHash: number): T {
    return this.members[this.owners[this.firstPointAtOrAfter(keyHash)]];
  }

  /**
   * The member for `keyHash` whose load stays within `factor` of the average: walks clockwise from the
   * key's point, skipping members at capacity. `loadOf` is each member's current load (calls in flight).
   */
  pick(keyHash: number, factor: number, totalLoad: number, loadOf: (member: T) => number): T {
    const capacity = Math.ceil((factor * (totalLoad + 1)) / this.members.length);
    const start = this.firstPointAtOrAfter(keyHash);
    const points = this.positions.length;
    for (let step = 0; step < points; step++) {
      const member = this.members[this.owners[(start + step) % points]];
      if (loadOf(member) < capacity) return member;
    }
    // Unreachable: capacity * members > totalLoad, so some member is under it.
    return this.members[this.owners[start]];
  }

  private firstPointAtOrAfter(keyHash: number): number {
    let low = 0;
    let high = this.positions.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.positions[middle] < keyHash) low = middle + 1;
      else high = middle;
    }
    return low === this.positions.length ? 0 : low;
  }
}

/**
 * Smooth weighted round robin (nginx's): every pick adds each peer's weight to its running score,
 * takes the highest score and subtracts the total from it. Weights 1:2:3 give c b a c b c: shares
 * exact over each cycle, and heavy peers interleaved rather than bunched.
 */
export interface WeightedPeer {
  readonly key: string;
  readonly weight: number;
}

/** Running scores by peer key; kept across picker rebuilds so a reconnect does not reset the cycle. */
export type SmoothWeightedState = Map<string, number>;

/** Picks one peer (weights > 0) and updates `state` in place; undefined for an empty list. */
export function pickSmoothWeighted(peers: readonly WeightedPeer[], state: SmoothWeightedState): WeightedPeer | undefined {
  let best: WeightedPeer | undefined;
  let bestScore = -Infinity;
  let total = 0;
  for (const peer of peers) {
    const score = (state.get(peer.key) ?? 0) + peer.weight;
    state.set(peer.key, score);
    total += peer.weight;
    if (score > bestScore) {
      best = peer;
      bestScore = score;
    }
  }
  if (best) state.set(best.key, bestScore - total);
  return best;
}

/** Forgets scores of peers no longer present, so the state cannot grow without bound. */
export function pruneSmoothWeightedState(state: SmoothWeightedState, keys: ReadonlySet<string>): void {
  for (const key of state.keys()) if (!keys.has(key)) state.delete(key);
}

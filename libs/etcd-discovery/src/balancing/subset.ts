import type { ServiceInstance } from '../discovery/service-instance.js';
import { hash32 } from './hash-ring.js';

/**
 * Subsetting by rendezvous (highest random weight) hashing: a client keeps the `size` instances that
 * score highest for its key. Deterministic for a key; when an instance joins or leaves, a client's subset
 * changes only if that instance is (or enters) among its top `size`, so few clients move; over many
 * clients every instance is chosen by about `clients x size / instances` of them.
 */
export function subsetOf(instances: readonly ServiceInstance[], size: number, clientKey: string): readonly ServiceInstance[] {
  if (instances.length <= size) return instances;
  const scored = instances.map((instance) => ({ instance, score: hash32(`${clientKey}\u0000${instance.key}`) }));
  // Ties broken by key, so every process ranks the same way.
  scored.sort((a, b) => b.score - a.score || (a.instance.key < b.instance.key ? -1 : 1));
  const chosen = new Set(scored.slice(0, size).map(({ instance }) => instance));
  // In the list's own order: the policy sees a stable order, not the hash order.
  return instances.filter((instance) => chosen.has(instance));
}

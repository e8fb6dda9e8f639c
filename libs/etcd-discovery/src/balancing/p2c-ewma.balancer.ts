import { experimental, logVerbosity, type status as Status } from '@grpc/grpc-js';
import { fieldLessPolicyConfig } from './field-less-policy-config.js';
import { EndpointSetBalancer, type ReadyEndpoint } from './endpoint-set.balancer.js';
import { EndpointStats, FORCE_PICK_MS } from './endpoint-stats.js';

const TRACER_NAME = 'p2c_ewma';
export const P2C_EWMA_POLICY = 'nestjs_p2c_ewma';
/** Statistics of a removed endpoint are kept this long, so one that flaps back is not judged from zero. */
const STATS_RETENTION_MS = 60_000;
/** go-zero draws up to 3 pairs looking for two healthy endpoints. */
const PICK_ATTEMPTS = 3;

function trace(text: string): void {
  experimental.trace(logVerbosity.DEBUG, TRACER_NAME, text);
}

export const P2cEwmaConfig = fieldLessPolicyConfig(P2C_EWMA_POLICY);

export interface P2cCandidate {
  readonly key: string;
  readonly stats: EndpointStats;
}

/**
 * Power of two choices, as go-zero's p2c: draw two distinct endpoints (preferring healthy pairs),
 * take the lower load, but take the other if it has not been picked for FORCE_PICK_MS. Ejected
 * endpoints are left out unless every endpoint is ejected. Pure: `random` and `now` are inputs.
 */
export function pickP2c<T extends P2cCandidate>(candidates: readonly T[], now: number, random: () => number = Math.random): T {
  const eligible = candidates.filter((candidate) => !candidate.stats.isEjected(now));
  const pool = eligible.length > 0 ? eligible : candidates;
  if (pool.length === 1) return mark(pool[0], now);
  let first = pool[0];
  let second = pool[1];
  for (let attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
    const a = Math.floor(random() * pool.length);
    const b = (a + 1 + Math.floor(random() * (pool.length - 1))) % pool.length;
    first = pool[a];
    second = pool[b];
    if (first.stats.isHealthy(now) && second.stats.isHealthy(now)) break;
  }
  if (first.stats.load() > second.stats.load()) [first, second] = [second, first];
  return now - second.stats.lastPickedAt > FORCE_PICK_MS ? mark(second, now) : mark(first, now);
}

function mark<T extends P2cCandidate>(candidate: T, now: number): T {
  candidate.stats.lastPickedAt = now;
  return candidate;
}

class P2cPicker implements experimental.Picker {
  constructor(private readonly candidates: readonly (ReadyEndpoint & P2cCandidate)[]) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    // performance.now(): loopback calls take well under the 1 ms resolution of Date.now().
    const chosen = pickP2c(this.candidates, performance.now());
    const result = chosen.picker.pick(args);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE) return result;
    const { stats, metrics } = chosen;
    metrics.picked();
    const startedAt = performance.now();
    const { onCallStarted, onCallEnded } = result;
    return {
      ...result,
      onCallStarted: () => {
        stats.onStarted();
        onCallStarted?.();
      },
      onCallEnded: (code: Status, details, metadata) => {
        const now = performance.now();
        const wasEjected = stats.isEjected(now);
        stats.onEnded(code, startedAt, now);
        if (!wasEjected && stats.isEjected(now)) metrics.ejected();
        onCallEnded?.(code, details, metadata);
      },
    };
  }
}

/**
 * Least-loaded balancing by power of two choices with latency EWMA. Improves on go-zero's in three
 * ways: the load is linear in the latency (EndpointStats.load()), statistics survive membership updates
 * (go-zero rebuilds them on every update, so a busy endpoint looks idle after any change), and
 * UNAVAILABLE ejects an endpoint at once (go-zero waits for a time-decayed success score to fall, which
 * under heavy traffic takes thousands of calls).
 */
export class P2cEwmaBalancer extends EndpointSetBalancer {
  private readonly stats = new Map<string, EndpointStats>();
  private readonly removedAt = new Map<string, number>();

  getTypeName(): string {
    return P2C_EWMA_POLICY;
  }

  protected acceptConfig(config: experimental.TypedLoadBalancingConfig): boolean {
    return config instanceof P2cEwmaConfig;
  }

  protected override onMembership(keys: ReadonlySet<string>): void {
    const now = Date.now();
    for (const key of this.stats.keys()) {
      if (keys.has(key)) {
        this.removedAt.delete(key);
      } else {
        const since = this.removedAt.get(key) ?? now;
        this.removedAt.set(key, since);
        if (now - since > STATS_RETENTION_MS) {
          this.stats.delete(key);
          this.removedAt.delete(key);
        }
      }
    }
  }

  protected createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    trace(`picker over ${ready.map((endpoint) => endpoint.key).join(',')}`);
    return new P2cPicker(ready.map((endpoint) => ({ ...endpoint, stats: this.statsFor(endpoint.key) })));
  }

  private statsFor(key: string): EndpointStats {
    let stats = this.stats.get(key);
    if (!stats) {
      stats = new EndpointStats();
      this.stats.set(key, stats);
    }
    return stats;
  }
}

let registered = false;

export function setup(): void {
  if (registered) return;
  experimental.registerLoadBalancerType(P2C_EWMA_POLICY, P2cEwmaBalancer, P2cEwmaConfig);
  registered = true;
}

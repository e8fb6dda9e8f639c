import { experimental, logVerbosity } from '@grpc/grpc-js';
import { EndpointSetBalancer, type ReadyEndpoint } from './endpoint-set.balancer.js';
import { hash32, HashRing, type RingMember } from './hash-ring.js';

const TRACER_NAME = 'consistent_hash';
export const CONSISTENT_HASH_POLICY = 'nestjs_consistent_hash';
/** The paper's and HAProxy's usual factor: no endpoint above 125 % of the average load. */
export const DEFAULT_BALANCE_FACTOR = 1.25;
/** gRPC metadata keys: lower-case, no `-bin` (binary values have no stable text to hash), not grpc's own. */
export const HASH_KEY_PATTERN = /^(?!grpc-)[0-9a-z_.-]{1,64}(?<!-bin)$/;

function trace(text: string): void {
  experimental.trace(logVerbosity.DEBUG, TRACER_NAME, text);
}

export class ConsistentHashConfig implements experimental.TypedLoadBalancingConfig {
  constructor(
    readonly hashKey: string,
    readonly balanceFactor: number,
  ) {}

  getLoadBalancerName(): string {
    return CONSISTENT_HASH_POLICY;
  }

  toJsonObject(): object {
    return { [CONSISTENT_HASH_POLICY]: { hashKey: this.hashKey, balanceFactor: this.balanceFactor } };
  }

  static createFromJson(json: unknown): ConsistentHashConfig {
    const { hashKey, balanceFactor = DEFAULT_BALANCE_FACTOR } = (json ?? {}) as { hashKey?: unknown; balanceFactor?: unknown };
    if (typeof hashKey !== 'string' || !HASH_KEY_PATTERN.test(hashKey)) {
      throw new Error(`${CONSISTENT_HASH_POLICY}: hashKey must be a lower-case metadata key (not -bin, not grpc-), got ${JSON.stringify(hashKey)}`);
    }
    if (typeof balanceFactor !== 'number' || !(balanceFactor > 1) || balanceFactor > 100) {
      throw new Error(`${CONSISTENT_HASH_POLICY}: balanceFactor must be a number above 1 and at most 100, got ${JSON.stringify(balanceFactor)}`);
    }
    return new ConsistentHashConfig(hashKey, balanceFactor);
  }
}

/** Calls in flight per endpoint, and in all; an endpoint's counter outlives its removal until its calls end. */
class InflightLoads {
  total = 0;
  private readonly byKey = new Map<string, { count: number }>();

  counterOf(key: string): { count: number } {
    let counter = this.byKey.get(key);
    if (!counter) {
      counter = { count: 0 };
      this.byKey.set(key, counter);
    }
    return counter;
  }

  of(key: string): number {
    return this.byKey.get(key)?.count ?? 0;
  }

  forgetAllBut(keys: ReadonlySet<string>): void {
    for (const [key, counter] of this.byKey) if (!keys.has(key) && counter.count === 0) this.byKey.delete(key);
  }
}

class ConsistentHashPicker implements experimental.Picker {
  private next = 0;
  private readonly byKey: ReadonlyMap<string, ReadyEndpoint>;

  constructor(
    /** Over every member, connected or not: rebuilt when membership changes, not when a connection does. */
    private readonly ring: HashRing<RingMember>,
    private readonly ready: readonly ReadyEndpoint[],
    private readonly config: ConsistentHashConfig,
    private readonly loads: InflightLoads,
  ) {
    this.byKey = new Map(ready.map((endpoint) => [endpoint.key, endpoint]));
  }

  pick(args: experimental.PickArgs): experimental.PickResult {
    const value = args.metadata.get(this.config.hashKey)[0];
    const hashed =
      typeof value === 'string'
        ? this.ring.pickAmong(hash32(value), this.config.balanceFactor, this.loads.total, this.byKey.size, (member) =>
            this.byKey.has(member.key) ? this.loads.of(member.key) : undefined,
          )
        : undefined;
    const chosen = hashed ? this.byKey.get(hashed.key)! : this.ready[this.next++ % this.ready.length];
    const result = chosen.picker.pick(args);
    if (result.pickResultType !== experimental.PickResultType.COMPLETE) return result;
    chosen.metrics.picked();
    const counter = this.loads.counterOf(chosen.key);
    const loads = this.loads;
    const { onCallStarted, onCallEnded } = result;
    return {
      ...result,
      onCallStarted: () => {
        counter.count += 1;
        loads.total += 1;
        onCallStarted?.();
      },
      onCallEnded: (code, details, metadata) => {
        counter.count -= 1;
        loads.total -= 1;
        onCallEnded?.(code, details, metadata);
      },
    };
  }
}

/**
 * Consistent hashing with bounded loads on a call metadata entry (`hashKey`): calls with the same value
 * reach the same endpoint across calls and processes while it is connected and under `balanceFactor` x
 * the average in-flight load; when one of N endpoints leaves, only its keys move. Calls without the
 * entry are spread round robin.
 */
export class ConsistentHashBalancer extends EndpointSetBalancer {
  private config?: ConsistentHashConfig;
  private readonly loads = new InflightLoads();
  private ring?: HashRing<RingMember>;
  private memberKeys: ReadonlySet<string> = new Set();

  getTypeName(): string {
    return CONSISTENT_HASH_POLICY;
  }

  protected acceptConfig(config: experimental.TypedLoadBalancingConfig): boolean {
    if (!(config instanceof ConsistentHashConfig)) return false;
    this.config = config;
    return true;
  }

  protected override onMembership(keys: ReadonlySet<string>): void {
    this.loads.forgetAllBut(keys);
    const members = [...keys];
    if (this.ring && members.length === this.ring.members.length && members.every((key) => this.memberKeys.has(key))) return;
    this.memberKeys = new Set(members);
    this.ring = new HashRing(members.map((key) => ({ key })));
    trace(`ring over ${members.join(',')}`);
  }

  protected createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    // Endpoints outside the ring cannot occur (every child is a member); a ring over them keeps picks correct anyway.
    const ring = this.ring && ready.every((endpoint) => this.memberKeys.has(endpoint.key)) ? this.ring : new HashRing(ready.map(({ key }) => ({ key })));
    return new ConsistentHashPicker(ring, ready, this.config!, this.loads);
  }
}

let registered = false;

export function setup(): void {
  if (registered) return;
  experimental.registerLoadBalancerType(CONSISTENT_HASH_POLICY, ConsistentHashBalancer, ConsistentHashConfig);
  registered = true;
}

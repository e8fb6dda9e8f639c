import { experimental } from '@grpc/grpc-js';
import { fieldLessPolicyConfig } from './field-less-policy-config.js';
import { EndpointSetBalancer, type ReadyEndpoint } from './endpoint-set.balancer.js';

/**
 * Round robin on our endpoint set, for clients with request routes (grpc-js's round_robin cannot see
 * them); clients without routes keep grpc-js's own.
 */
export const ROUND_ROBIN_POLICY = 'nestjs_round_robin';

export const RoundRobinConfig = fieldLessPolicyConfig(ROUND_ROBIN_POLICY);

class RoundRobinPicker implements experimental.Picker {
  private next: number;

  constructor(private readonly ready: readonly ReadyEndpoint[]) {
    // As grpc-js: start at a random endpoint, so clients built together do not all call the same one first.
    this.next = Math.floor(Math.random() * ready.length);
  }

  pick(args: experimental.PickArgs): experimental.PickResult {
    const chosen = this.ready[this.next];
    this.next = (this.next + 1) % this.ready.length;
    const result = chosen.picker.pick(args);
    if (result.pickResultType === experimental.PickResultType.COMPLETE) chosen.metrics.picked();
    return result;
  }
}

export class RoundRobinBalancer extends EndpointSetBalancer {
  getTypeName(): string {
    return ROUND_ROBIN_POLICY;
  }

  protected acceptConfig(config: experimental.TypedLoadBalancingConfig): boolean {
    return config instanceof RoundRobinConfig;
  }

  protected createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    return new RoundRobinPicker(ready);
  }
}

let registered = false;

export function setup(): void {
  if (registered) return;
  experimental.registerLoadBalancerType(ROUND_ROBIN_POLICY, RoundRobinBalancer, RoundRobinConfig);
  registered = true;
}

import { experimental, logVerbosity } from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import { printable } from '../common/printable.js';
import { DEFAULT_WEIGHT } from '../options/metadata-rules.js';
import { wellKnownMetadata } from '../registry/well-known-metadata.js';
import type { DiscoveredEndpoint } from './etcd.resolver.js';
import { fieldLessPolicyConfig } from './field-less-policy-config.js';
import { EndpointSetBalancer, type ReadyEndpoint } from './endpoint-set.balancer.js';
import { pickSmoothWeighted, pruneSmoothWeightedState, type SmoothWeightedState } from './smooth-weighted-round-robin.js';

const TRACER_NAME = 'metadata_weighted';
/**
 * Smooth weighted round robin over static weights from the registry record's `Metadata.weight`.
 * Not grpc-js's `weighted_round_robin`, which takes weights from servers' ORCA load reports.
 */
export const METADATA_WEIGHTED_POLICY = 'nestjs_metadata_weighted';
function trace(text: string): void {
  experimental.trace(logVerbosity.DEBUG, TRACER_NAME, text);
}

export const MetadataWeightedConfig = fieldLessPolicyConfig(METADATA_WEIGHTED_POLICY);

class WeightedPicker implements experimental.Picker {
  constructor(
    private readonly peers: readonly (ReadyEndpoint & { weight: number })[],
    private readonly state: SmoothWeightedState,
  ) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    const chosen = pickSmoothWeighted(this.peers, this.state) as (typeof this.peers)[number];
    const result = chosen.picker.pick(args);
    if (result.pickResultType === experimental.PickResultType.COMPLETE) chosen.metrics.picked();
    return result;
  }
}

/**
 * Weight 0 marks a standby: it gets calls only while no endpoint with a positive weight is
 * connected (then standbys share them equally).
 */
export class MetadataWeightedBalancer extends EndpointSetBalancer {
  private readonly scores: SmoothWeightedState = new Map();
  private readonly reported = new Set<string>();
  private readonly logger = new Logger('EtcdDiscovery');

  getTypeName(): string {
    return METADATA_WEIGHTED_POLICY;
  }

  protected acceptConfig(config: experimental.TypedLoadBalancingConfig): boolean {
    return config instanceof MetadataWeightedConfig;
  }

  protected override onMembership(keys: ReadonlySet<string>): void {
    pruneSmoothWeightedState(this.scores, keys);
    for (const key of this.reported) if (!keys.has(key)) this.reported.delete(key);
  }

  protected createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    const weighted = ready.map((endpoint) => ({ ...endpoint, weight: this.weightOf(endpoint) }));
    const active = weighted.filter((peer) => peer.weight > 0);
    const peers = active.length > 0 ? active : weighted.map((peer) => ({ ...peer, weight: 1 }));
    trace(`picker over ${peers.map((peer) => `${peer.key}*${peer.weight}`).join(',')}`);
    return new WeightedPicker(peers, this.scores);
  }

  private weightOf(endpoint: ReadyEndpoint): number {
    const metadata = (endpoint.endpoint as Partial<DiscoveredEndpoint>).instance?.metadata;
    if (metadata === undefined) return DEFAULT_WEIGHT;
    const { weight, problems } = wellKnownMetadata(metadata);
    if (problems.length > 0 && !this.reported.has(endpoint.key)) {
      this.reported.add(endpoint.key);
      this.logger.warn(`${endpoint.key}: ${printable(problems.join('; '))}`);
    }
    return weight;
  }
}

let registered = false;

export function setup(): void {
  if (registered) return;
  experimental.registerLoadBalancerType(METADATA_WEIGHTED_POLICY, MetadataWeightedBalancer, MetadataWeightedConfig);
  registered = true;
}

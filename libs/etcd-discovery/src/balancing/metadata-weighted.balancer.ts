import { experimental, logVerbosity } from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
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
const DEFAULT_WEIGHT = 1;

function trace(text: string): void {
  experimental.trace(logVerbosity.DEBUG, TRACER_NAME, text);
}

export const MetadataWeightedConfig = fieldLessPolicyConfig(METADATA_WEIGHTED_POLICY);

/** Weight from a record: an integer >= 0; anything else counts as 1. Undefined reason = valid. */
export function weightOf(metadata: Readonly<Record<string, unknown>> | undefined): { weight: number; problem?: string } {
  const raw = metadata?.weight;
  if (raw === undefined) return { weight: DEFAULT_WEIGHT };
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 1_000_000) return { weight: raw };
  return { weight: DEFAULT_WEIGHT, problem: `weight ${JSON.stringify(raw)} is not an integer from 0 to 1000000; using ${DEFAULT_WEIGHT}` };
}

class WeightedPicker implements experimental.Picker {
  constructor(
    private readonly peers: readonly (ReadyEndpoint & { weight: number })[],
    private readonly state: SmoothWeightedState,
  ) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    const chosen = pickSmoothWeighted(this.peers, this.state) as (typeof this.peers)[number];
    return chosen.picker.pick(args);
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
  }

  protected createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    const weighted = ready.map((endpoint) => ({ ...endpoint, weight: this.weightOf(endpoint) }));
    const active = weighted.filter((peer) => peer.weight > 0);
    const peers = active.length > 0 ? active : weighted.map((peer) => ({ ...peer, weight: 1 }));
    trace(`picker over ${peers.map((peer) => `${peer.key}*${peer.weight}`).join(',')}`);
    return new WeightedPicker(peers, this.scores);
  }

  private weightOf(endpoint: ReadyEndpoint): number {
    const { weight, problem } = weightOf((endpoint.endpoint as Partial<DiscoveredEndpoint>).instance?.metadata);
    if (problem && !this.reported.has(endpoint.key)) {
      this.reported.add(endpoint.key);
      this.logger.warn(`${endpoint.key}: ${problem}`);
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

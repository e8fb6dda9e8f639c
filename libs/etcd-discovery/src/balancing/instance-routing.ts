import semver from 'semver';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { wellKnownMetadata } from '../registry/well-known-metadata.js';

/** Which instances a client may call, applied before balancing. */
export interface InstanceSelector {
  /** Exact matches on `Metadata` keys, e.g. `{ version: '1.4.0', canary: false }`. */
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
  /** A semver range `Metadata.version` must satisfy, e.g. `'^1.4.0'`; records without a valid version never match. */
  readonly version?: string;
  /** Prefer instances whose `Metadata.zone` is this; use every zone while it has no matching instance. */
  readonly preferredZone?: string;
}

export interface RoutedInstances {
  readonly instances: readonly ServiceInstance[];
  /** Why the list is empty, naming the selector; empty when instances remain. */
  readonly note: string;
  /** True while the preferred zone has no instance and other zones are used. */
  readonly zoneFallback: boolean;
}

export function routeInstances(serviceName: string, all: readonly ServiceInstance[], selector: InstanceSelector = {}): RoutedInstances {
  const matching = all.filter((instance) => matchesSelector(instance, selector));
  if (matching.length === 0 && all.length > 0) {
    const { preferredZone: _zone, ...filters } = selector;
    return {
      instances: [],
      note: `${all.length} live instance(s) of "${serviceName}", none matching selector ${JSON.stringify(filters)}`,
      zoneFallback: false,
    };
  }
  if (selector.preferredZone === undefined) return { instances: matching, note: '', zoneFallback: false };
  const inZone = matching.filter((instance) => wellKnownMetadata(instance.metadata).zone === selector.preferredZone);
  return inZone.length > 0
    ? { instances: inZone, note: '', zoneFallback: false }
    : { instances: matching, note: '', zoneFallback: matching.length > 0 };
}

export function matchesSelector(instance: ServiceInstance, selector: InstanceSelector): boolean {
  for (const [key, expected] of Object.entries(selector.metadata ?? {})) {
    if (instance.metadata[key] !== expected) return false;
  }
  if (selector.version !== undefined) {
    const { version } = wellKnownMetadata(instance.metadata);
    if (version === undefined || semver.valid(version) === null) return false;
    if (!semver.satisfies(version, selector.version, { includePrerelease: true })) return false;
  }
  return true;
}

/** True for a usable semver range; used by option validation. */
export function isValidVersionRange(range: string): boolean {
  return semver.validRange(range) !== null;
}

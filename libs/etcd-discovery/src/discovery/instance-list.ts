import type { MirrorSnapshot } from '../registry/prefix-mirror.js';
import { endpointKey, formatHostPort } from '../registry/address.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import { metadataKey, type DecodeResult, type ServiceInstance } from '../registry/registry-record.codec.js';

/** What the service watcher keeps per key: the decoded record or why it was skipped. */
export type DecodedEntry = DecodeResult & { readonly id?: string };

export interface InstanceListResult {
  readonly instances: readonly ServiceInstance[];
  /** Keys skipped, each with its reason (bad record, key outside the pattern, duplicate address). */
  readonly skipped: ReadonlyMap<string, string>;
}

/**
 * The routable instances of a snapshot, ordered by key. Invalid records are skipped, and so are
 * later records for an address already listed: routing twice to one address would double its
 * share. The OLDEST record of an address holds it, so a record written later (a copy, a stale
 * registrar) can neither replace a live instance's metadata nor keep its address listed after the
 * instance deregisters. `localhost:p` and `127.0.0.1:p` are one address. Addresses the policy
 * refuses are skipped like any bad record.
 */
export function buildInstanceList(snapshot: MirrorSnapshot<DecodedEntry>, policy?: AddressPolicy): InstanceListResult {
  const instances: ServiceInstance[] = [];
  const skipped = new Map<string, string>();
  const byAddress = new Map<string, string>();
  for (const key of keysByAge(snapshot)) {
    const entry = snapshot.get(key)!.value;
    if (!entry.ok || entry.id === undefined) {
      skipped.set(key, entry.ok ? 'key is not <namespace>/<service>/<instanceId>' : entry.reason);
      continue;
    }
    const refusal = policy?.refusal(entry.address.host);
    if (refusal !== undefined) {
      skipped.set(key, refusal);
      continue;
    }
    const address = formatHostPort(entry.address);
    const endpoint = endpointKey(entry.address);
    const holder = byAddress.get(endpoint);
    if (holder !== undefined) {
      skipped.set(key, `duplicate of ${holder} (same address ${endpoint})`);
      continue;
    }
    byAddress.set(endpoint, key);
    instances.push({ id: entry.id, key, address, host: entry.address.host, port: entry.address.port, metadata: entry.metadata });
  }
  instances.sort((a, b) => compareText(a.key, b.key));
  return { instances, skipped };
}

function keysByAge(snapshot: MirrorSnapshot<DecodedEntry>): string[] {
  const age = (key: string): bigint => BigInt(snapshot.get(key)!.createRevision || '0');
  return [...snapshot.keys()].sort((a, b) => {
    const difference = age(a) - age(b);
    return difference === 0n ? compareText(a, b) : difference < 0n ? -1 : 1;
  });
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface InstanceListDiff {
  readonly added: readonly ServiceInstance[];
  readonly removed: readonly ServiceInstance[];
  readonly changed: readonly ServiceInstance[];
}

/** Differences by key; `changed` holds the new version of instances whose address or metadata changed. */
export function diffInstances(before: readonly ServiceInstance[], after: readonly ServiceInstance[]): InstanceListDiff {
  const old = new Map(before.map((instance) => [instance.key, instance]));
  const next = new Map(after.map((instance) => [instance.key, instance]));
  const added = after.filter((instance) => !old.has(instance.key));
  const removed = before.filter((instance) => !next.has(instance.key));
  const changed = after.filter((instance) => {
    const previous = old.get(instance.key);
    return previous !== undefined && !sameInstance(previous, instance);
  });
  return { added, removed, changed };
}

export function isEmptyDiff(diff: InstanceListDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}

function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  return a.address === b.address && (a.metadata === b.metadata || metadataKey(a.metadata) === metadataKey(b.metadata));
}

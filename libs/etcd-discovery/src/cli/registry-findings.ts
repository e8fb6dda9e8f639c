import { MAX_KEY_BYTES_AFTER_PREFIX } from '../registry/overlong-keys.js';
import { MAX_RECORD_BYTES } from '../registry/registry-record.codec.js';
import { wellKnownMetadata } from '../registry/well-known-metadata.js';
import { NO_LEASE } from './lease-ttls.js';
import type { ListedKey, RegistrySnapshot, ServiceListing } from './registry-snapshot.js';

export type FindingKind =
  | 'garbage'
  | 'oversized-value'
  | 'oversized-key'
  | 'bad-key'
  | 'refused-address'
  | 'duplicate'
  | 'bad-metadata'
  | 'over-cap'
  | 'no-lease';

export interface Finding {
  readonly kind: FindingKind;
  /** Absent for a key outside any service prefix. */
  readonly service?: string;
  /** The key; an over-long key's first bytes only (see `keyBytes`). */
  readonly key: string;
  readonly keyBytes: number;
  readonly detail: string;
}

/**
 * Everything in the registry a client skips, misreads or keeps too long. The verdicts are the library's
 * (its decoder, address policy, de-duplication and caps, run by `readRegistry`); this only names them.
 */
export function findProblems(snapshot: RegistrySnapshot): Finding[] {
  const findings: Finding[] = [];
  for (const listed of snapshot.stray) {
    findings.push(finding('bad-key', undefined, listed, `not <namespace>/<service>/<instanceId> (namespace ${snapshot.namespace})`));
  }
  for (const service of snapshot.services) findings.push(...serviceProblems(service));
  const everyKey = [...snapshot.stray.map((listed) => [undefined, listed] as const), ...snapshot.services.flatMap((service) => service.keys.map((listed) => [service.service, listed] as const))];
  for (const [service, listed] of everyKey) {
    if (listed.lease === NO_LEASE) findings.push(finding('no-lease', service, listed, 'no lease: the key stays when its process dies'));
  }
  return findings.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

function serviceProblems(listing: ServiceListing): Finding[] {
  const findings: Finding[] = [];
  const { service } = listing;
  for (const listed of listing.overlong) {
    findings.push(finding('oversized-key', service, listed, `key of ${listed.keyBytes} bytes: clients do not read keys over ${MAX_KEY_BYTES_AFTER_PREFIX} bytes after the service prefix`));
  }
  if (listing.capped) {
    const { cap, firstIgnored, ignored } = listing.capped;
    findings.push(finding('over-cap', service, firstIgnored, `the service holds more than a client's ${cap}: this key and ${ignored - 1} after it are ignored`));
  }
  const listedByKey = new Map(listing.keys.map((listed) => [listed.key, listed]));
  for (const [key, reason] of listing.list.skipped) {
    const listed = listedByKey.get(key)!;
    const entry = listing.entries.get(key)!.value;
    if (!entry.ok) findings.push(finding(listed.valueBytes > MAX_RECORD_BYTES ? 'oversized-value' : 'garbage', service, listed, reason));
    else if (entry.instance === undefined) findings.push(finding('bad-key', service, listed, reason));
    else if (entry.refusal !== undefined) findings.push(finding('refused-address', service, listed, reason));
    else findings.push(finding('duplicate', service, listed, `${reason}: clients route to the oldest record of an address only`));
  }
  for (const instance of listing.list.instances) {
    const { problems } = wellKnownMetadata(instance.metadata);
    if (problems.length > 0) findings.push(finding('bad-metadata', service, listedByKey.get(instance.key)!, problems.join('; ')));
  }
  return findings;
}

function finding(kind: FindingKind, service: string | undefined, listed: ListedKey, detail: string): Finding {
  return { kind, ...(service === undefined ? {} : { service }), key: listed.key, keyBytes: listed.keyBytes, detail };
}

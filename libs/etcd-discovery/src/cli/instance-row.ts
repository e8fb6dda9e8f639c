import type { ServiceInstance } from '../discovery/service-instance.js';
import { wellKnownMetadata } from '../registry/well-known-metadata.js';
import { leaseHex, NO_LEASE } from './lease-ttls.js';
import type { ListedKey } from './registry-snapshot.js';

/** One instance as `ls --json` and `watch --json` print it. */
export interface InstanceRow {
  readonly service: string;
  readonly id: string;
  readonly key: string;
  readonly address: string;
  readonly zone: string | null;
  readonly version: string | null;
  /** The weight balancing uses: the record's, or 1 when it has none (or a bad one). */
  readonly weight: number;
  /** The record's `startedAt` metadata, when it is a time. */
  readonly startedAt: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export function instanceRow(service: string, instance: ServiceInstance): InstanceRow {
  const known = wellKnownMetadata(instance.metadata);
  const startedAt = instance.metadata.startedAt;
  return {
    service,
    id: instance.id,
    key: instance.key,
    address: instance.address,
    zone: known.zone ?? null,
    version: known.version ?? null,
    weight: known.weight,
    startedAt: typeof startedAt === 'string' && !Number.isNaN(Date.parse(startedAt)) ? startedAt : null,
    metadata: instance.metadata,
  };
}

/** What only a listing knows: the key's lease and revisions. */
export interface ListedInstanceRow extends InstanceRow {
  /** Seconds since `startedAt`; null without it (etcd keeps no time of its own). */
  readonly ageSeconds: number | null;
  /** etcdctl's hexadecimal lease id; null for a key without a lease. */
  readonly lease: string | null;
  /** Seconds the lease has left (LeaseTimeToLive); -1 when it expired meanwhile; null without a lease. */
  readonly leaseTtlSeconds: number | null;
  readonly createRevision: string;
  readonly modRevision: string;
}

export function listedInstanceRow(row: InstanceRow, listed: ListedKey, ttls: ReadonlyMap<string, number>, now: number): ListedInstanceRow {
  const hasLease = listed.lease !== NO_LEASE;
  return {
    ...row,
    ageSeconds: row.startedAt === null ? null : Math.max(0, Math.floor((now - Date.parse(row.startedAt)) / 1_000)),
    lease: hasLease ? leaseHex(listed.lease) : null,
    leaseTtlSeconds: hasLease ? (ttls.get(listed.lease) ?? -1) : null,
    createRevision: listed.createRevision,
    modRevision: listed.modRevision,
  };
}

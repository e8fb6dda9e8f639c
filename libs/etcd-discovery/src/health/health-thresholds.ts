import { failOption } from '../options/invalid-options.error.js';

/**
 * When `isHealthy()` says `down`, in ms; `Infinity` turns a condition off. Both default to 1.5 x
 * `server.ttlSeconds` (15 s with the default TTL of 10 s).
 */
export interface EtcdDiscoveryHealthThresholds {
  /**
   * `down` once requests to etcd have failed, with no answer since, for this long. Past a TTL without
   * keepalives, an etcd that is up elsewhere has dropped this process's lease, so peers no longer see it; shorter outages
   * (a leader election, an etcd restart) are ridden out by the library and should not flip readiness.
   */
  readonly etcdUnreachableMs?: number;
  /**
   * `down` once the registration has been out of etcd without meaning to (`idle`, `registering`, `lost`)
   * for this long. A lost registration is back within about 2 s of etcd answering; longer means
   * something a person must look at (a key held by another record, a refused write, a server never started).
   */
  readonly registrationAbsentMs?: number;
}

export type ResolvedHealthThresholds = Required<EtcdDiscoveryHealthThresholds>;

const FIELDS = ['etcdUnreachableMs', 'registrationAbsentMs'] as const;

export function defaultHealthThresholds(ttlSeconds: number): ResolvedHealthThresholds {
  const ms = Math.round(1.5 * ttlSeconds * 1_000);
  return { etcdUnreachableMs: ms, registrationAbsentMs: ms };
}

/** The thresholds of one `isHealthy()` call over the defaults; throws InvalidDiscoveryOptionsError naming the field. */
export function resolveHealthThresholds(thresholds: unknown, defaults: ResolvedHealthThresholds): ResolvedHealthThresholds {
  if (thresholds === undefined) return defaults;
  if (typeof thresholds !== 'object' || thresholds === null || Array.isArray(thresholds)) {
    failOption('thresholds', thresholds, `pass isHealthy(key, { ${FIELDS.join(', ')} }) an object, or nothing for the defaults`);
  }
  const given = thresholds as Record<string, unknown>;
  const unknown = Object.keys(given).filter((field) => !(FIELDS as readonly string[]).includes(field));
  if (unknown.length > 0) {
    failOption(`thresholds.${unknown[0]}`, given[unknown[0]], `unknown threshold; use ${FIELDS.join(' or ')}`);
  }
  const resolved = { ...defaults };
  for (const field of FIELDS) {
    const value = given[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(Number.isInteger(value) || value === Infinity) || value < 0) {
      failOption(`thresholds.${field}`, value, 'use a whole number of milliseconds, 0 or more (Infinity: never down for this)');
    }
    resolved[field] = value;
  }
  return resolved;
}

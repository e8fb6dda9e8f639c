import type { RegistrationState } from '../server/registration-state.js';

/**
 * What `EtcdDiscoveryHealthIndicator.isHealthy(key)` resolves with: `{ [key]: details }`, the shape
 * `@nestjs/terminus` expects of an indicator (its `HealthIndicatorResult`), written without importing it.
 * Times are ISO 8601 strings, durations milliseconds; `null` means "never" or "not now".
 */
export type EtcdDiscoveryHealthResult<Key extends string = string> = Record<Key, EtcdDiscoveryHealthDetails>;

export interface EtcdDiscoveryHealthDetails {
  readonly status: 'up' | 'down';
  /** Why the status is `down`, every reason; absent when `up`. */
  readonly message?: string;
  readonly etcd: EtcdReachabilityHealth;
  /** This process's own registration; `null` when the app registers no service. */
  readonly registration: RegistrationHealth | null;
  /** Every service this process follows right now (called or resolved), by name. */
  readonly services: Readonly<Record<string, FollowedServiceHealth>>;
}

export interface EtcdReachabilityHealth {
  /** False from the first failed request with no answer from etcd since; recovers at the next answer. */
  readonly reachable: boolean;
  /** The last request etcd answered: any call, or a lease keepalive. */
  readonly lastSuccessAt: string | null;
  readonly lastError: { readonly message: string; readonly at: string } | null;
  /** How long requests have been failing with no answer; `null` while etcd answers. */
  readonly unreachableForMs: number | null;
}

export interface RegistrationHealth {
  readonly state: RegistrationState;
  /** The services this process registers. */
  readonly services: readonly string[];
  /** The live lease; `null` before the first grant and while a lost one is replaced. */
  readonly leaseId: string | null;
  /** When etcd last answered a keepalive of the live lease (or granted it). */
  readonly lastKeepaliveAt: string | null;
  readonly keepaliveAgeMs: number | null;
  /** How long the registration has been out of etcd without meaning to (`idle`, `registering`, `lost`); `null` otherwise. */
  readonly absentForMs: number | null;
}

export interface FollowedServiceHealth {
  /** Routable instances this process can call; `null` until etcd has been listed once. */
  readonly instances: number | null;
  /** When the list last matched etcd for sure: the last listing, or the last change a watch delivered. */
  readonly syncedAt: string | null;
  /** A confirmed watch is live, so changes arrive as they happen: an old `syncedAt` then only means no change. */
  readonly watching: boolean;
  /** Why etcd cannot be listed, while that lasts. */
  readonly error: string | null;
}

import type { DiscoveryHub } from '../discovery/discovery-hub.js';
import { failOption } from '../options/invalid-options.error.js';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import type { EtcdActivity } from '../registry/etcd-activity.js';
import type { EtcdRegistration } from '../server/etcd-registration.js';
import type {
  EtcdDiscoveryHealthDetails,
  EtcdDiscoveryHealthResult,
  EtcdReachabilityHealth,
  FollowedServiceHealth,
  RegistrationHealth,
} from './health-result.js';
import { defaultHealthThresholds, resolveHealthThresholds, type EtcdDiscoveryHealthThresholds, type ResolvedHealthThresholds } from './health-thresholds.js';
import { RegistrationPresence } from './registration-presence.js';

/**
 * A `@nestjs/terminus` health indicator for discovery: etcd reachability, this app's registration and
 * the services it follows. It returns terminus's result shape (`{ [key]: { status, ...details } }`)
 * without importing terminus, so the library works without it; terminus's HealthCheckService counts a
 * `down` result as an error and answers 503. Meant for readiness, never liveness (see the README).
 */
export class EtcdDiscoveryHealthIndicator {
  private readonly presence: RegistrationPresence;
  private readonly defaults: ResolvedHealthThresholds;
  private readonly registeredServices: readonly string[];

  /** @internal Made by EtcdDiscoveryModule; inject it. */
  constructor(
    private readonly registration: EtcdRegistration,
    private readonly hub: DiscoveryHub,
    private readonly activity: EtcdActivity,
    options: ResolvedDiscoveryOptions,
  ) {
    this.presence = new RegistrationPresence(registration);
    this.defaults = defaultHealthThresholds(options.server.ttlSeconds);
    this.registeredServices = options.registrations.map((registration) => registration.serviceName);
  }

  /**
   * `up`, or `down` when etcd has not answered for `etcdUnreachableMs`, when the registration has been
   * absent for `registrationAbsentMs`, or once it is being withdrawn (shutdown). Throws
   * InvalidDiscoveryOptionsError for a bad key or threshold.
   */
  async isHealthy<Key extends string>(key: Key, thresholds?: EtcdDiscoveryHealthThresholds): Promise<EtcdDiscoveryHealthResult<Key>> {
    if (typeof key !== 'string' || key.length === 0) {
      failOption('key', key, 'pass isHealthy() the non-empty name the result goes under, e.g. isHealthy("etcd-discovery")');
    }
    const limits = resolveHealthThresholds(thresholds, this.defaults);
    const now = Date.now();
    const etcd = this.etcdHealth(now);
    const registration = this.registrationHealth(now);
    const reasons = [...this.etcdProblems(etcd, limits), ...this.registrationProblems(registration, limits)];
    const details: EtcdDiscoveryHealthDetails = {
      status: reasons.length === 0 ? 'up' : 'down',
      ...(reasons.length > 0 ? { message: reasons.join('; ') } : {}),
      etcd,
      registration,
      services: this.servicesHealth(),
    };
    return { [key]: details } as EtcdDiscoveryHealthResult<Key>;
  }

  private etcdHealth(now: number): EtcdReachabilityHealth {
    const { lastSuccessAt, lastError, failingSince } = this.activity.snapshot;
    return {
      reachable: failingSince === undefined,
      lastSuccessAt: iso(lastSuccessAt),
      lastError: lastError ? { message: lastError.message, at: new Date(lastError.at).toISOString() } : null,
      unreachableForMs: failingSince === undefined ? null : now - failingSince,
    };
  }

  private registrationHealth(now: number): RegistrationHealth | null {
    if (this.registeredServices.length === 0) return null;
    const lastKeepaliveAt = this.registration.lastKeepaliveAt;
    return {
      state: this.presence.state,
      services: this.registeredServices,
      leaseId: this.registration.leaseId ?? null,
      lastKeepaliveAt: iso(lastKeepaliveAt),
      keepaliveAgeMs: lastKeepaliveAt === undefined ? null : now - lastKeepaliveAt,
      absentForMs: this.presence.absentForMs(now) ?? null,
    };
  }

  private servicesHealth(): Record<string, FollowedServiceHealth> {
    const services: Record<string, FollowedServiceHealth> = {};
    for (const [name, sync] of this.hub.followed()) {
      services[name] = {
        instances: sync.instances ?? null,
        syncedAt: iso(sync.syncedAt),
        watching: sync.watching,
        error: sync.unreachableReason ?? null,
      };
    }
    return services;
  }

  private etcdProblems(etcd: EtcdReachabilityHealth, limits: ResolvedHealthThresholds): string[] {
    if (etcd.unreachableForMs === null || etcd.unreachableForMs < limits.etcdUnreachableMs) return [];
    return [`etcd unreachable for ${etcd.unreachableForMs} ms (last error: ${etcd.lastError?.message ?? 'unknown'})`];
  }

  private registrationProblems(registration: RegistrationHealth | null, limits: ResolvedHealthThresholds): string[] {
    if (!registration) return [];
    if (registration.state === 'deregistering' || registration.state === 'deregistered') {
      return [`registration ${registration.state}: the app is shutting down`];
    }
    if (registration.absentForMs === null || registration.absentForMs < limits.registrationAbsentMs) return [];
    return [`registration ${registration.state} for ${registration.absentForMs} ms`];
  }
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

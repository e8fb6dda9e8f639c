import type { Observable } from 'rxjs';
import type { DiscoveryState } from './discovery-state.js';
import type { ServiceInstance } from './service-instance.js';

/** Anything that can tell the live instances of a service: what the resolver reads. */
export interface InstanceSource {
  /** The live instances, once listed; re-emits on every change. */
  watch(serviceName: string): Observable<readonly ServiceInstance[]>;
  /** As `watch`, plus why the service cannot be listed while it never has been. */
  states(serviceName: string): Observable<DiscoveryState>;
  prefixOf(serviceName: string): string;
  /** Why the service's instances cannot be listed right now (etcd unreachable), if that is the case. */
  unreachableReason?(serviceName: string): string | undefined;
}

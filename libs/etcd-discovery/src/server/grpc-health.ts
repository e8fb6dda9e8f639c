import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Observable, Subscription } from 'rxjs';
import { printable } from '../common/printable.js';
import type { RegistrationState } from './registration-state.js';

/** The standard health service's fully qualified name. */
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** The overall status, asked for with the empty service name (what a Kubernetes gRPC probe sends by default). */
const OVERALL = '';

/**
 * Health follows "would clients discovering through etcd pick this process": `SERVING` only while
 * registered. `lost` counts as not listed: the keys may be gone, and etcd3 declares a lease lost only
 * when etcd says so or after 2 x TTL without a keepalive answer, so a short etcd blip does not flip it.
 */
export function servingStatusOf(state: RegistrationState): ServingStatus {
  return state === 'registered' ? 'SERVING' : 'NOT_SERVING';
}

interface WatchCall {
  readonly request: { readonly service?: unknown };
  write(message: { status: string }): unknown;
  end(): void;
  on(event: 'cancelled', listener: () => void): unknown;
}

interface CheckCall {
  readonly request: { readonly service?: unknown };
}

type CheckCallback = (error: { code: number; details: string } | null, reply?: { status: string }) => void;

const GRPC_STATUS_NOT_FOUND = 5;
/** Longer names cannot be a served service: their Watch is answered and ended rather than held open. */
const MAX_SERVICE_NAME_CHARS = 256;

type HealthServer = Parameters<HealthImplementation['addToServer']>[0];

/**
 * `grpc.health.v1.Health` (grpc-health-check's implementation) on the app's gRPC server, with one
 * status for `""` and each served service, all following the registration state.
 */
export class GrpcHealth {
  private readonly health: HealthImplementation;
  private readonly watches = new Set<WatchCall>();
  private current: ServingStatus = 'NOT_SERVING';
  private subscription?: Subscription;
  private closing = false;

  private readonly known: ReadonlySet<string>;

  constructor(private readonly services: readonly string[]) {
    this.known = new Set(this.names());
    this.health = new HealthImplementation(Object.fromEntries(this.names().map((name) => [name, this.current])));
  }

  /** Adds the service; throws as grpc-js does if one of its methods is already served. */
  addTo(server: grpc.Server): void {
    const tracking: HealthServer = {
      addService: (definition, implementation) => {
        const watch = implementation.watch as (call: WatchCall) => void;
        const check = implementation.check as (call: CheckCall, callback: CheckCallback) => void;
        server.addService(definition as grpc.ServiceDefinition, {
          ...implementation,
          // Names we serve go to grpc-health-check; any other name is answered here: it keeps a map entry per
          // name ever watched, so clients naming megabyte-long services would grow the heap for good.
          check: (call: CheckCall, callback: CheckCallback) => {
            if (this.isKnown(call.request.service)) return check(call, callback);
            callback({ code: GRPC_STATUS_NOT_FOUND, details: `Health status unknown for service ${printable(String(call.request.service ?? ''), 100)}` });
          },
          // Tracked so shutdown can end them: an open Watch would hold graceful shutdown until its deadline.
          watch: (call: WatchCall) => {
            // A Watch that got in just before shutdown: ending it later would hold shutdown again.
            if (this.closing) return call.end();
            const name = call.request.service;
            if (!this.isKnown(name)) {
              call.write({ status: 'SERVICE_UNKNOWN' });
              // The protocol keeps the stream open in case the service appears; ours are fixed at start.
              if (typeof name !== 'string' || name.length > MAX_SERVICE_NAME_CHARS) return call.end();
              this.track(call);
              return;
            }
            this.track(call);
            watch(call);
          },
        } as grpc.UntypedServiceImplementation);
      },
    };
    this.health.addToServer(tracking);
  }

  private isKnown(name: unknown): boolean {
    return typeof name === 'string' && this.known.has(name);
  }

  private track(call: WatchCall): void {
    this.watches.add(call);
    call.on('cancelled', () => this.watches.delete(call));
  }

  follow(state$: Observable<RegistrationState>): void {
    this.subscription = state$.subscribe((state) => this.set(servingStatusOf(state)));
  }

  /**
   * Ends every open Watch with OK (clients retry it, per the health protocol). Call after the server
   * stopped taking new streams, so a retried Watch cannot hold shutdown open again.
   */
  endWatches(): void {
    this.closing = true;
    this.subscription?.unsubscribe();
    for (const call of this.watches) call.end();
    this.watches.clear();
  }

  private set(status: ServingStatus): void {
    // grpc-health-check notifies watchers on every setStatus: only changes are sent.
    if (status === this.current) return;
    this.current = status;
    for (const name of this.names()) this.health.setStatus(name, status);
  }

  private names(): string[] {
    return [OVERALL, ...this.services];
  }
}

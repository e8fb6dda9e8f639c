import { Logger } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { distinctUntilChanged, filter, map, Observable, ReplaySubject, share, timer } from 'rxjs';
import type { AddressPolicy } from '../registry/address-policy.js';
import { servicePrefix } from '../registry/registry-keys.js';
import type { ServiceInstance } from './service-instance.js';
import type { DiscoveryState } from './discovery-state.js';
import type { InstanceSource } from './instance-source.js';
import { RebuildPacer } from './rebuild-pacer.js';
import { ServiceWatcher, type ServiceSync } from './service-watcher.js';

/** A watch outlives its last subscriber this long, so a channel that goes idle and back does not re-list. */
const LINGER_MS = 30_000;

/**
 * ONE watcher per service per process, shared by every channel and subscriber of that service,
 * started on first use and stopped a while after the last subscriber leaves.
 */
export class DiscoveryHub implements InstanceSource {
  private readonly streams = new Map<string, Observable<DiscoveryState>>();
  private readonly active = new Map<string, ServiceWatcher>();
  private readonly logger = new Logger('EtcdDiscovery');
  private readonly pacer = new RebuildPacer();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly namespace: string,
    private readonly policy?: AddressPolicy,
  ) {}

  prefixOf(serviceName: string): string {
    return servicePrefix(this.namespace, serviceName);
  }

  watch(serviceName: string): Observable<readonly ServiceInstance[]> {
    return this.states(serviceName).pipe(
      map((state) => (state.kind === 'listed' ? state.instances : undefined)),
      filter((list): list is readonly ServiceInstance[] => list !== undefined),
      distinctUntilChanged(),
    );
  }

  states(serviceName: string): Observable<DiscoveryState> {
    let stream = this.streams.get(serviceName);
    if (!stream) {
      stream = this.createStream(serviceName);
      this.streams.set(serviceName, stream);
    }
    return stream;
  }

  unreachableReason(serviceName: string): string | undefined {
    return this.active.get(serviceName)?.unreachableReason;
  }

  /** Every service followed right now (watched for at least one subscriber, or lingering), by name. */
  followed(): ReadonlyMap<string, ServiceSync> {
    return new Map([...this.active].map(([name, watcher]) => [name, watcher.sync]));
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.active.values()) watcher.stop();
    this.active.clear();
  }

  private createStream(serviceName: string): Observable<DiscoveryState> {
    return new Observable<DiscoveryState>((subscriber) => {
      if (this.closed) {
        subscriber.error(new Error('nestjs-etcd-discovery: the discovery module has shut down'));
        return undefined;
      }
      const watcher = new ServiceWatcher(this.client, serviceName, this.prefixOf(serviceName), this.logger, this.policy, this.pacer);
      this.active.set(serviceName, watcher);
      const subscription = watcher.states$.subscribe(subscriber);
      watcher.start();
      return () => {
        subscription.unsubscribe();
        if (this.active.get(serviceName) === watcher) this.active.delete(serviceName);
        watcher.stop();
      };
    }).pipe(
      share({
        connector: () => new ReplaySubject(1),
        resetOnError: true,
        resetOnComplete: true,
        resetOnRefCountZero: () => timer(LINGER_MS),
      }),
    );
  }
}

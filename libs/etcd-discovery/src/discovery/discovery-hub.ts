import { Logger } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { Observable, type Subscriber, type TeardownLogic } from 'rxjs';
import { DEFAULT_NAMESPACE_WATCH_FROM } from '../options/defaults.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import { PrefixMirror, type MirrorFeed } from '../registry/prefix-mirror.js';
import type { EntryMaker } from '../registry/prefix-mirror-store.js';
import { MAX_SEGMENT_BYTES, PrefixMirrorSet } from '../registry/prefix-mirror-set.js';
import { servicePrefix } from '../registry/registry-keys.js';
import type { ServiceInstance } from './service-instance.js';
import type { DiscoveryState } from './discovery-state.js';
import type { InstanceSource } from './instance-source.js';
import { decodeEntry, decodeStoredEntry, type DecodedEntry } from './instance-list.js';
import { RebuildPacer } from './rebuild-pacer.js';
import { ServiceWatcher, type ServiceSync } from './service-watcher.js';

/** A watch outlives its last subscriber this long, so a channel that goes idle and back does not re-list. */
const LINGER_MS = 30_000;
export interface DiscoveryHubOptions {
  /**
   * Followed services from which one namespace watch feeds them all (see DEFAULT_NAMESPACE_WATCH_FROM); the
   * hub goes back to a watch per service below half of it. 0: never.
   */
  readonly namespaceWatchFrom?: number;
  /** See LINGER_MS. */
  readonly lingerMs?: number;
}

/**
 * ONE watcher per service per process, shared by every channel and subscriber of that service,
 * started on first use and stopped a while after the last subscriber leaves. From `namespaceWatchFrom`
 * services on, the watchers are fed by one watch on the namespace, handed over without a gap.
 */
export class DiscoveryHub implements InstanceSource {
  private readonly watchers = new Map<string, ServiceWatcher>();
  private readonly logger = new Logger('EtcdDiscovery');
  private readonly pacer = new RebuildPacer();
  private readonly namespaceWatchFrom: number;
  private readonly lingerMs: number;
  private readonly entryInNamespace: EntryMaker<DecodedEntry>;
  /** The namespace watch while the hub uses it. */
  private set?: PrefixMirrorSet<DecodedEntry>;
  /** etcd refused this client a watch on the whole namespace: every service keeps a watch of its own. */
  private namespaceRefused = false;
  /** Followed services whose name can be told from a key (no `/`): those a namespace watch can feed. */
  private segmentServices = 0;
  /** Watchers made in the current task, started together once it ends (see follow). */
  private unstarted: ServiceWatcher[] = [];
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly namespace: string,
    private readonly policy?: AddressPolicy,
    options: DiscoveryHubOptions = {},
  ) {
    const from = options.namespaceWatchFrom ?? DEFAULT_NAMESPACE_WATCH_FROM;
    this.namespaceWatchFrom = from === 0 ? Number.POSITIVE_INFINITY : from;
    this.lingerMs = options.lingerMs ?? LINGER_MS;
    this.entryInNamespace = (prefix, key, kv, bytes) => decodeStoredEntry(prefix, key, kv, bytes, policy);
  }

  prefixOf(serviceName: string): string {
    return servicePrefix(this.namespace, serviceName);
  }

  watch(serviceName: string): Observable<readonly ServiceInstance[]> {
    return new Observable<readonly ServiceInstance[]>((subscriber) => this.subscribe(serviceName, subscriber as Subscriber<never>, true));
  }

  states(serviceName: string): Observable<DiscoveryState> {
    return new Observable<DiscoveryState>((subscriber) => this.subscribe(serviceName, subscriber as Subscriber<never>, false));
  }

  unreachableReason(serviceName: string): string | undefined {
    return this.watchers.get(serviceName)?.unreachableReason;
  }

  /** Every service followed right now (watched for at least one subscriber, or lingering), by name. */
  followed(): ReadonlyMap<string, ServiceSync> {
    return new Map([...this.watchers].map(([name, watcher]) => [name, watcher.sync]));
  }

  /** True while one watch on the namespace feeds the services that can be told by name. */
  get watchesNamespace(): boolean {
    return this.set !== undefined;
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watchers.values()) watcher.stop();
    this.watchers.clear();
    this.set = undefined;
  }

  private subscribe(serviceName: string, subscriber: Subscriber<never>, listsOnly: boolean): TeardownLogic {
    if (this.closed) {
      subscriber.error(new Error('nestjs-etcd-discovery: the discovery module has shut down'));
      return undefined;
    }
    const watcher = this.watchers.get(serviceName) ?? this.follow(serviceName);
    if (watcher.lingerTimer) clearTimeout(watcher.lingerTimer);
    watcher.lingerTimer = undefined;
    return watcher.add(subscriber, listsOnly, () => {
      watcher.lingerTimer = setTimeout(() => this.unfollow(watcher), this.lingerMs);
    });
  }

  /**
   * The watcher starts once the current task ends: the services an app follows in one go are counted together
   * when the hub chooses between a watch per service and one on the namespace, so a thousand followed at once
   * start on the namespace watch instead of opening (and then closing) a watch each for the first ones.
   */
  private follow(serviceName: string): ServiceWatcher {
    const watcher = new ServiceWatcher(serviceName, this.prefixOf(serviceName), this.logger, this.policy, this.pacer);
    this.watchers.set(serviceName, watcher);
    if (isSegment(serviceName)) this.segmentServices += 1;
    this.unstarted.push(watcher);
    if (this.unstarted.length === 1) queueMicrotask(() => this.startFollowing());
    return watcher;
  }

  private startFollowing(): void {
    const watchers = this.unstarted;
    this.unstarted = [];
    if (this.closed) return;
    this.chooseWatches();
    for (const watcher of watchers) {
      if (this.watchers.get(watcher.serviceName) !== watcher) continue;
      watcher.use(this.set && isSegment(watcher.serviceName) ? this.set.member(watcher.serviceName, watcher, watcher.prefix) : this.ownWatch(watcher));
    }
  }

  private unfollow(watcher: ServiceWatcher): void {
    if (this.watchers.get(watcher.serviceName) !== watcher || watcher.subscribers > 0) return;
    this.watchers.delete(watcher.serviceName);
    watcher.stop();
    if (isSegment(watcher.serviceName)) {
      this.segmentServices -= 1;
      this.chooseWatches();
    }
  }

  /**
   * One namespace watch from `namespaceWatchFrom` services on, a watch per service again below half of it
   * (not at once below: a count around the threshold must not flap). Every watcher moves without a gap.
   */
  private chooseWatches(): void {
    if (this.closed) return;
    if (!this.set && !this.namespaceRefused && this.segmentServices >= this.namespaceWatchFrom) {
      const set = new PrefixMirrorSet<DecodedEntry>(this.client, {
        parent: `${this.namespace}/`,
        makeEntry: this.entryInNamespace,
        logger: this.logger,
        onRefused: () => this.refused(set),
      });
      this.set = set;
      this.logger.log(`following ${this.segmentServices} services: one watch on ${this.namespace}/ instead of one per service`);
      for (const watcher of this.watchers.values()) {
        if (watcher.target instanceof PrefixMirror && isSegment(watcher.serviceName)) watcher.handOver(set.member(watcher.serviceName, watcher, watcher.prefix, watcher.target));
      }
    } else if (this.set && this.segmentServices < this.namespaceWatchFrom / 2) {
      this.set = undefined;
      this.logger.log(`following ${this.segmentServices} services: one watch per service again`);
      this.ownWatchesForAll();
    }
  }

  /** etcd will not let this client watch the namespace: back to a watch per service, for good. */
  private refused(set: PrefixMirrorSet<DecodedEntry>): void {
    this.namespaceRefused = true;
    if (this.set === set) this.set = undefined;
    this.ownWatchesForAll();
  }

  private ownWatchesForAll(): void {
    for (const watcher of this.watchers.values()) {
      if (watcher.target !== undefined && !(watcher.target instanceof PrefixMirror)) watcher.handOver(this.ownWatch(watcher, watcher.target));
    }
  }

  /** A watch of the service's own; `seed`: the state of the feed it takes over from. */
  private ownWatch(watcher: ServiceWatcher, seed?: MirrorFeed<DecodedEntry>): MirrorFeed<DecodedEntry> {
    const { prefix } = watcher;
    const policy = this.policy;
    const mirror: PrefixMirror<DecodedEntry> = new PrefixMirror<DecodedEntry>(this.client, {
      prefix,
      seed,
      decode: (key, kv) => decodeEntry(prefix, key, kv.value, policy),
      onChange: (snapshot) => watcher.mirrorChanged(mirror, snapshot),
      onListFailed: (reason) => watcher.mirrorListFailed(mirror, reason),
      logger: this.logger,
    });
    return mirror;
  }
}

/** A service name a namespace watch can tell from its keys: the one path segment after the namespace. */
function isSegment(serviceName: string): boolean {
  return serviceName.length > 0 && !serviceName.includes('/') && Buffer.byteLength(serviceName) <= MAX_SEGMENT_BYTES;
}

import type { Logger } from '@nestjs/common';
import type { Etcd3, IKeyValue } from 'etcd3';
import { BehaviorSubject, filter, type Observable } from 'rxjs';
import { errorMessage } from '../common/backoff.js';
import { LogBudget } from '../common/log-budget.js';
import { printable } from '../common/printable.js';
import { telemetry } from '../telemetry/index.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import { PrefixMirror, type MirrorSnapshot } from '../registry/prefix-mirror.js';
import type { ServiceInstance } from './service-instance.js';
import type { DiscoveryState } from './discovery-state.js';
import { buildInstanceList, decodeEntry, diffInstances, isEmptyDiff, type DecodedEntry } from './instance-list.js';
import { RebuildPacer } from './rebuild-pacer.js';
import { SkippedKeys } from './skipped-keys.js';

/**
 * Rebuilds of one service's list at most this often: the first change of a burst is published at
 * once, later ones together at the end of the interval, so a writer rewriting one key as fast as etcd
 * takes it costs a client one rebuild per interval, not one per write. Short, so churn is followed
 * within milliseconds; what bounds the CPU of large lists is the hub's pacer.
 */
export const REBUILD_INTERVAL_MS = 10;
/** Membership lines per service and window; the rest is summed up in one line. */
const MEMBERSHIP_LINES = { perWindow: 20, windowMs: 10_000 };

/**
 * Follows the live instances of one service: a prefix mirror under `<namespace>/<service>/`
 * turned into a routable list. Emits only when the list changes. Before the first successful list
 * it emits why listing failed (if it did), never an empty list: "no instance yet" is never
 * confused with "etcd unreachable".
 */
export class ServiceWatcher {
  private readonly state$ = new BehaviorSubject<DiscoveryState | undefined>(undefined);
  private readonly mirror: PrefixMirror<DecodedEntry>;
  private readonly skippedKeys: SkippedKeys;
  private readonly membershipLines: LogBudget;
  private readonly metrics: telemetry.ServiceMetrics;
  private listed?: readonly ServiceInstance[];
  private pending?: MirrorSnapshot<DecodedEntry>;
  private lastRebuildAt = -Infinity;
  private rebuildTimer?: NodeJS.Timeout;

  constructor(
    client: Etcd3,
    readonly serviceName: string,
    readonly prefix: string,
    private readonly logger: Logger,
    private readonly policy?: AddressPolicy,
    /** Shared by the watchers of one hub, so rebuilds of all services together stay within a share of the time. */
    private readonly pacer: RebuildPacer = new RebuildPacer(),
  ) {
    this.skippedKeys = new SkippedKeys(serviceName, logger);
    this.metrics = new telemetry.ServiceMetrics(serviceName);
    this.membershipLines = new LogBudget(MEMBERSHIP_LINES.perWindow, MEMBERSHIP_LINES.windowMs, (count) =>
      this.logger.log(`${this.serviceName}: ${count} more membership changes in the last ${MEMBERSHIP_LINES.windowMs / 1_000} s; ${this.listed?.length ?? 0} live`),
    );
    this.mirror = new PrefixMirror<DecodedEntry>(client, {
      prefix,
      decode: (key, kv: IKeyValue) => decodeEntry(prefix, key, kv.value, policy),
      onChange: (snapshot) => this.changed(snapshot),
      onListFailed: (reason) => this.listFailed(reason),
      logger,
    });
  }

  get states$(): Observable<DiscoveryState> {
    return this.state$.pipe(filter((state): state is DiscoveryState => state !== undefined));
  }

  start(): void {
    this.mirror.start();
  }

  stop(): void {
    this.mirror.stop();
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    this.membershipLines.flush();
    this.metrics.stopped();
    this.state$.complete();
  }

  /** Why etcd could not be listed, while that lasts. */
  get unreachableReason(): string | undefined {
    return this.mirror.unreachableReason;
  }

  /** How well this process knows the service right now, for health reports. */
  get sync(): ServiceSync {
    return {
      instances: this.listed?.length,
      syncedAt: this.mirror.syncedAt,
      watching: this.mirror.watching,
      unreachableReason: this.mirror.unreachableReason,
    };
  }

  /**
   * The first list, and a change after a quiet interval, are built at once; a burst after it once per
   * interval, and never faster than the hub's pacer allows. The monotonic clock: a wall-clock step back
   * must not hold updates.
   */
  private changed(snapshot: MirrorSnapshot<DecodedEntry>): void {
    const wait = Math.max(this.lastRebuildAt + REBUILD_INTERVAL_MS - performance.now(), this.pacer.waitMs());
    if (this.listed === undefined || wait <= 0) {
      // A late timer must not publish an older snapshot after this one.
      if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
      this.rebuildTimer = undefined;
      this.pending = undefined;
      this.rebuild(snapshot);
      return;
    }
    this.pending = snapshot;
    this.rebuildTimer ??= setTimeout(() => {
      this.rebuildTimer = undefined;
      const next = this.pending;
      this.pending = undefined;
      if (!next) return;
      // A throw here has no caller to hand it to: keep the last list and say why once.
      try {
        this.rebuild(next);
      } catch (error) {
        this.logger.error(`${this.serviceName}: rebuilding the instance list failed (${printable(errorMessage(error))}); keeping the last one`);
      }
    }, wait);
  }

  /** Builds the new list and publishes it; logging comes after, so a throwing logger cannot hold a list back. */
  private rebuild(snapshot: MirrorSnapshot<DecodedEntry>): void {
    this.lastRebuildAt = performance.now();
    const { instances, skipped } = this.pacer.run(() => buildInstanceList(snapshot, this.policy));
    const previous = this.listed;
    const diff = diffInstances(previous ?? [], instances);
    const changed = previous === undefined || !isEmptyDiff(diff);
    if (changed) {
      this.listed = instances;
      this.state$.next({ kind: 'listed', instances });
      this.metrics.listed(instances.length, previous === undefined ? undefined : diff);
    }
    this.skippedKeys.report(skipped);
    const parts = [
      ...diff.added.map((instance) => `+${instance.address} (${printable(instance.id, 80)})`),
      ...diff.removed.map((instance) => `-${instance.address} (${printable(instance.id, 80)})`),
      ...diff.changed.map((instance) => `~${instance.address} (${printable(instance.id, 80)})`),
    ];
    if (parts.length > 0) this.membershipLines.spend(() => this.logger.log(`${this.serviceName}: ${summarize(parts)}; ${instances.length} live`));
  }

  private listFailed(reason: string): void {
    if (this.listed === undefined) this.state$.next({ kind: 'unlisted', reason });
  }
}

export interface ServiceSync {
  /** Routable instances in the published list; undefined until etcd has been listed once. */
  readonly instances?: number;
  /** See `PrefixMirror.syncedAt`. */
  readonly syncedAt?: number;
  readonly watching: boolean;
  readonly unreachableReason?: string;
}

/** One log line per change, however many instances a change moved. */
const MAX_LISTED_CHANGES = 10;

function summarize(parts: readonly string[]): string {
  if (parts.length <= MAX_LISTED_CHANGES) return parts.join(' ');
  return `${parts.slice(0, MAX_LISTED_CHANGES).join(' ')} and ${parts.length - MAX_LISTED_CHANGES} more`;
}

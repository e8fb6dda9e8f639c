import { Logger } from '@nestjs/common';
import type { Subscriber, TeardownLogic } from 'rxjs';
import { errorMessage } from '../common/backoff.js';
import { LogBudget } from '../common/log-budget.js';
import { printable } from '../common/printable.js';
import { telemetry } from '../telemetry/index.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import type { MirrorFeed, MirrorSnapshot } from '../registry/prefix-mirror.js';
import type { MirrorConsumer } from '../registry/prefix-mirror-set.js';
import { sameEntries } from '../registry/prefix-mirror-store.js';
import type { ServiceInstance } from './service-instance.js';
import type { DiscoveryState } from './discovery-state.js';
import { buildInstanceList, diffInstances, isEmptyDiff, type DecodedEntry } from './instance-list.js';
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
 * A feed taking over from another waits at most this long for its watch to catch up with what the old one
 * has already shown (normally milliseconds); then it takes over anyway, and at worst shows an older list
 * for as long as its own watch lags.
 */
const HANDOVER_MAX_WAIT_MS = 2_000;
const HANDOVER_RECHECK_MS = 10;

/** A subscriber of the service's states, or of its lists only. */
interface Listener {
  readonly subscriber: Subscriber<never>;
  readonly listsOnly: boolean;
}

interface Handover {
  readonly feed: MirrorFeed<DecodedEntry>;
  adoptBy?: number;
  timer?: NodeJS.Timeout;
}

/**
 * Follows the live instances of one service: the mirror of `<namespace>/<service>/` (a watch of its own,
 * or its share of one watch on the whole namespace) turned into a routable list. Emits only when the list
 * changes. Before the first successful list it emits why listing failed (if it did), never an empty list:
 * "no instance yet" is never confused with "etcd unreachable". The feed can be replaced while running:
 * the new one takes over once it has listed and caught up, so subscribers see neither a gap nor a step back.
 * A client may follow thousands of services: what most never need (log budgets, skipped-key memory) is
 * made on first use, and subscribers are kept in a plain array rather than a chain of subjects.
 */
export class ServiceWatcher implements MirrorConsumer<DecodedEntry> {
  private feed?: MirrorFeed<DecodedEntry>;
  private handover?: Handover;
  private latest?: DiscoveryState;
  private listeners: Listener[] = [];
  private skippedKeys?: SkippedKeys;
  private membershipLines?: LogBudget;
  private readonly metrics: telemetry.ServiceMetrics;
  private listed?: readonly ServiceInstance[];
  private pending?: MirrorSnapshot<DecodedEntry>;
  private lastRebuildAt = -Infinity;
  private rebuildTimer?: NodeJS.Timeout;
  private stopped = false;
  /** Set by the hub while nobody subscribes: when the watch stops. */
  lingerTimer?: NodeJS.Timeout;

  constructor(
    readonly serviceName: string,
    readonly prefix: string,
    private readonly logger: Logger,
    private readonly policy?: AddressPolicy,
    /** Shared by the watchers of one hub, so rebuilds of all services together stay within a share of the time. */
    private readonly pacer: RebuildPacer = new RebuildPacer(),
  ) {
    this.metrics = new telemetry.ServiceMetrics(serviceName);
  }

  /** The feed in use, or the one taking over. */
  get target(): MirrorFeed<DecodedEntry> | undefined {
    return this.handover?.feed ?? this.feed;
  }

  get subscribers(): number {
    return this.listeners.length;
  }

  /** Starts following through `feed`, made with this watcher as its consumer. */
  use(feed: MirrorFeed<DecodedEntry>): void {
    if (this.stopped) return;
    this.feed = feed;
    feed.start();
  }

  /**
   * Moves to `next` without a gap: the current feed goes on publishing until `next` has listed and its
   * watch has caught up with every change the current one has shown; then the current one stops.
   */
  handOver(next: MirrorFeed<DecodedEntry>): void {
    if (this.stopped) return;
    this.dropHandover();
    this.handover = { feed: next };
    next.start();
  }

  /** Adds a subscriber; it gets the current state at once. Returns its teardown. */
  add(subscriber: Subscriber<never>, listsOnly: boolean, onLast: () => void): TeardownLogic {
    const listener: Listener = { subscriber, listsOnly };
    this.listeners.push(listener);
    if (this.latest) deliver(listener, this.latest);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index < 0) return;
      this.listeners.splice(index, 1);
      if (this.listeners.length === 0) onLast();
    };
  }

  stop(): void {
    this.stopped = true;
    this.dropHandover();
    this.feed?.stop();
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.membershipLines?.flush();
    this.metrics.stopped();
    const listeners = this.listeners;
    this.listeners = [];
    for (const { subscriber } of listeners) subscriber.complete();
  }

  /** Why etcd could not be listed, while that lasts. */
  get unreachableReason(): string | undefined {
    return this.feed?.unreachableReason;
  }

  /** How well this process knows the service right now, for health reports. */
  get sync(): ServiceSync {
    return {
      instances: this.listed?.length,
      syncedAt: this.feed?.syncedAt,
      watching: this.feed?.watching ?? false,
      unreachableReason: this.feed?.unreachableReason,
    };
  }

  mirrorChanged(feed: MirrorFeed<DecodedEntry>, snapshot: MirrorSnapshot<DecodedEntry>): void {
    if (feed === this.feed) this.changed(snapshot);
    else if (feed === this.handover?.feed) this.tryAdopt();
  }

  mirrorListFailed(feed: MirrorFeed<DecodedEntry>, reason: string): void {
    if (feed === this.feed || feed === this.handover?.feed) this.listFailed(reason);
  }

  /**
   * The new feed takes over once it has listed and its state is at least as recent as what the current one
   * has shown (its revision has reached the current one's last change, or both hold the same keys at the
   * same revisions), or after HANDOVER_MAX_WAIT_MS.
   */
  private tryAdopt(): void {
    const handover = this.handover;
    if (!handover || !handover.feed.listed || this.stopped) return;
    const current = this.feed;
    handover.adoptBy ??= performance.now() + HANDOVER_MAX_WAIT_MS;
    const behind = current?.listed === true && handover.feed.revision < current.changedAt && !sameEntries(current.current, handover.feed.current);
    if (behind && performance.now() < handover.adoptBy) {
      handover.timer ??= setTimeout(() => {
        handover.timer = undefined;
        this.tryAdopt();
      }, HANDOVER_RECHECK_MS);
      return;
    }
    if (handover.timer) clearTimeout(handover.timer);
    this.handover = undefined;
    this.feed = handover.feed;
    current?.stop();
    this.changed(handover.feed.current);
  }

  private dropHandover(): void {
    const handover = this.handover;
    this.handover = undefined;
    if (!handover) return;
    if (handover.timer) clearTimeout(handover.timer);
    handover.feed.stop();
  }

  private emit(state: DiscoveryState): void {
    this.latest = state;
    const listeners = this.listeners.length === 1 ? this.listeners : [...this.listeners];
    for (const listener of listeners) deliver(listener, state);
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
      this.emit({ kind: 'listed', instances });
      this.metrics.listed(instances.length, previous === undefined ? undefined : diff);
    }
    if (skipped.size > 0 || this.skippedKeys) (this.skippedKeys ??= new SkippedKeys(this.serviceName, this.logger)).report(skipped);
    // Membership lines are built only to be printed: a client listing thousands of services at `warn` builds none.
    if (!Logger.isLevelEnabled('log')) return;
    const parts = [
      ...diff.added.map((instance) => `+${instance.address} (${printable(instance.id, 80)})`),
      ...diff.removed.map((instance) => `-${instance.address} (${printable(instance.id, 80)})`),
      ...diff.changed.map((instance) => `~${instance.address} (${printable(instance.id, 80)})`),
    ];
    if (parts.length > 0) this.lines().spend(() => this.logger.log(`${this.serviceName}: ${summarize(parts)}; ${instances.length} live`));
  }

  private lines(): LogBudget {
    return (this.membershipLines ??= new LogBudget(MEMBERSHIP_LINES.perWindow, MEMBERSHIP_LINES.windowMs, (count) =>
      this.logger.log(`${this.serviceName}: ${count} more membership changes in the last ${MEMBERSHIP_LINES.windowMs / 1_000} s; ${this.listed?.length ?? 0} live`),
    ));
  }

  private listFailed(reason: string): void {
    if (this.listed === undefined) this.emit({ kind: 'unlisted', reason });
  }
}

function deliver(listener: Listener, state: DiscoveryState): void {
  const subscriber = listener.subscriber as Subscriber<DiscoveryState | readonly ServiceInstance[]>;
  if (state.kind === 'listed') subscriber.next(listener.listsOnly ? state.instances : state);
  else if (!listener.listsOnly) subscriber.next(state);
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

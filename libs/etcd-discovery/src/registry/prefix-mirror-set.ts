import type { Logger } from '@nestjs/common';
import { EtcdInvalidAuthTokenError, Range, type Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { Backoff, errorMessage, RECOVERY_BACKOFF, sleep } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { telemetry } from '../telemetry/index.js';
import { classifyEtcdFailure, describeEtcdFailure, isCompactedError, MAX_FAILURE_DETAIL_CHARS, retryDelayAfter } from './etcd-failure.js';
import { capsOf, type MirrorCaps } from './mirror-caps.js';
import { PageSizer, rangePages } from './paged-range.js';
import type { MirrorFeed, MirrorSnapshot } from './prefix-mirror-options.js';
import { lastEventRevision, PrefixStore, type EntryMaker, type MirrorSource, type StoreListing, type WatchEvent } from './prefix-mirror-store.js';
import { awaitConfirmation } from './watch-confirmation.js';
import { discardWatcher } from './discard-watcher.js';
import { WatchFragments } from './watch-fragments.js';

/** A watch that lived this long before dying counts as healthy: the next resync starts fast. */
const HEALTHY_WATCH_MS = 5_000;
/** Deletes come in bursts: wait this long before listing a capped prefix again to take in keys the cap had left out. */
const ROOM_RELIST_DELAY_MS = 2_000;
/** Prefixes listed at once: a thousand services followed at once must not be a thousand requests in flight. */
const MAX_CONCURRENT_LISTINGS = 32;
/**
 * From this many prefixes waiting at once, one read of the whole parent may serve them all: a request per
 * prefix cost a client ~0.5 ms of CPU each (grpc-js and etcd3 per call), a thousand services half a second.
 */
const LIST_TOGETHER_FROM = 128;
/** ... but only while the parent holds at most this many keys per waiting prefix: keys nobody follows are read for nothing. */
const MAX_PARENT_KEYS_PER_WAITING = 50;
/** Listings restarted in a row because their revision was compacted meanwhile, before backing off. */
const MAX_LIST_RESTARTS = 3;
const DEFAULT_MAX_PAGE_KEYS = 1_000;
/** Longest segment a member can have (service names are at most 128 characters); longer ones are nobody's. */
export const MAX_SEGMENT_BYTES = 256;
const SLASH = 0x2f;

export interface PrefixMirrorSetOptions<T> {
  /** Ends in `/`; every member mirrors `<parent><segment>/`. */
  readonly parent: string;
  readonly makeEntry: EntryMaker<T>;
  readonly logger: Logger;
  /** Per member, as PrefixMirror's. */
  readonly maxEntries?: number;
  readonly maxBytes?: number;
  readonly maxPageKeys?: number;
  /** See LIST_TOGETHER_FROM (the default). */
  readonly listTogetherFrom?: number;
  /** etcd refuses this client the parent prefix (permission denied): the set has stopped, its members never list. */
  readonly onRefused?: (reason: string) => void;
}

/** Events held per prefix while it lists, and their bytes; past either, they are dropped and the prefix listed again. */
const MAX_HELD_EVENTS = 10_000;
const MAX_HELD_BYTES = 32 * 1024 * 1024;

/** Who a member reports to; an interface rather than closures, so a thousand members hold no closures. */
export interface MirrorConsumer<T> {
  mirrorChanged(feed: MirrorFeed<T>, snapshot: MirrorSnapshot<T>): void;
  mirrorListFailed(feed: MirrorFeed<T>, reason: string): void;
}

/**
 * Mirrors many prefixes `<parent><segment>/` through ONE etcd watch on `<parent>`, instead of a watch per
 * prefix: a client following a thousand services holds one watcher in etcd and one in etcd3 (a watch per
 * service cost ~8 KB of client heap each and a watcher in etcd). Every member lists its own prefix (paged,
 * within its caps), so a key of a prefix nobody follows is never stored; its watch events are dropped by
 * their segment. The watch starts at a revision R0 read first; a member listed at R >= R0 applies only the
 * events after R, those that arrive while it lists included, so it misses nothing and replays nothing. On
 * any watch trouble, a new watch and every member listed again; each keeps its last state meanwhile.
 */
export class PrefixMirrorSet<T> {
  private readonly members = new Map<string, SetMember<T>>();
  private readonly parentBytes: Buffer;
  private readonly caps: MirrorCaps;
  private abort?: AbortController;
  private watcher?: Watcher;
  private confirmed = false;
  /** Counts watches: a listing made for an earlier watch is of no use to the current one. */
  private epoch = 0;
  /** The revision of the last event the current watch delivered (R0 before any): every earlier one has arrived. */
  private eventRevision = 0;
  private readonly fragments = new WatchFragments();
  private readonly queue: SetMember<T>[] = [];
  private listings = 0;
  private pumpScheduled = false;
  /** The watch for which the parent was found too large to list together: its members are listed one by one. */
  private apartIn?: number;
  private troubled = false;
  private refusal?: string;

  constructor(
    private readonly client: Etcd3,
    private readonly options: PrefixMirrorSetOptions<T>,
  ) {
    this.parentBytes = Buffer.from(options.parent);
    this.caps = capsOf(options);
  }

  get parent(): string {
    return this.options.parent;
  }

  /** Why etcd refused the parent prefix, once it has (the set has stopped for good then). */
  get refused(): string | undefined {
    return this.refusal;
  }

  /**
   * A mirror of `<parent><segment>/` reporting to `consumer`; it lists once started. One member per segment at a
   * time. `prefix` is passed in so a caller holding that string shares it; `seed` as PrefixStore's.
   */
  member(segment: string, consumer: MirrorConsumer<T>, prefix = `${this.options.parent}${segment}/`, seed?: MirrorSource<T>): MirrorFeed<T> {
    return new SetMember(this, segment, new PrefixStore(prefix, this.options.makeEntry, this.caps, this.options.logger, seed), consumer);
  }

  /** @internal */
  attach(member: SetMember<T>): void {
    if (this.members.get(member.segment) !== undefined) throw new Error(`${member.prefix} is mirrored twice`);
    this.members.set(member.segment, member);
    if (this.refusal !== undefined) {
      member.listFailed(this.refusal);
      return;
    }
    if (!this.abort) {
      const abort = new AbortController();
      this.abort = abort;
      void this.run(abort.signal);
    } else if (this.watcher) this.enqueue(member);
  }

  /** @internal */
  detach(member: SetMember<T>): void {
    if (this.members.get(member.segment) !== member) return;
    this.members.delete(member.segment);
    if (this.members.size > 0) return;
    // The last member gone: no watch without a reader. The next member starts a new one.
    this.abort?.abort();
    this.abort = undefined;
    this.dropWatcher();
    this.queue.length = 0;
  }

  /** @internal A member's state is complete up to this revision for its prefix, if it is listed for the current watch. */
  progressOf(member: SetMember<T>): number {
    return member.liveIn === this.epoch ? Math.max(member.listRevision, this.eventRevision) : member.listRevision;
  }

  /** @internal */
  watchingFor(member: SetMember<T>): boolean {
    return this.confirmed && this.watcher !== undefined && member.liveIn === this.epoch;
  }

  /** @internal Lists `member` for the current watch; its events are held until the listing is in. */
  enqueue(member: SetMember<T>): void {
    // A listing for this watch already pending covers whatever asks for another.
    if (this.members.get(member.segment) !== member || !this.watcher || member.listingEpoch === this.epoch) return;
    member.beginListing(this.epoch);
    this.queue.push(member);
    // After the current task: the services a caller follows in one go wait together, and may be listed together.
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(RECOVERY_BACKOFF);
    while (!signal.aborted) {
      const startedAt = Date.now();
      let failure: unknown;
      try {
        const revision = await this.currentRevision();
        if (signal.aborted) break;
        const ended = await this.watchFrom(revision, signal);
        if (signal.aborted) break;
        if (ended.error !== undefined && this.refuse(ended.error)) return;
        this.trouble(`watch on ${this.options.parent} ended (${ended.reason}); listing every followed prefix again`);
        telemetry.watchResynced(this.options.parent);
        if (Date.now() - startedAt > HEALTHY_WATCH_MS) backoff.reset();
      } catch (error) {
        if (signal.aborted) break;
        if (this.refuse(error)) return;
        failure = error;
        const reason = describeEtcdFailure(error);
        this.trouble(`cannot read ${this.options.parent} (${reason}); keeping the last known lists`);
        for (const member of this.members.values()) member.listFailed(reason);
      }
      await sleep(failure === undefined ? backoff.next() : retryDelayAfter(failure, backoff.next()), signal);
    }
  }

  /** The revision etcd is at: a read of the one key `<parent>` (values not sent), linearizable like every listing after it. */
  private async currentRevision(): Promise<number> {
    const key = Buffer.concat([this.client.prefix, this.parentBytes]);
    const response = await this.client.kv.range({ key, count_only: true });
    return Number(response.header.revision);
  }

  /** Watches `<parent>` from `revision + 1` and lists every member; resolves with why the watch stopped. */
  private watchFrom(revision: number, signal: AbortSignal): Promise<{ reason: string; error?: unknown }> {
    return new Promise((resolve) => {
      this.epoch += 1;
      const epoch = this.epoch;
      this.eventRevision = revision;
      this.confirmed = false;
      const scoped = this.client.watch().prefix(this.options.parent);
      // As PrefixMirror: a revision larger than a message comes in fragments instead of killing the shared stream.
      (scoped as unknown as { request: { fragment?: boolean } }).request.fragment = true;
      const watcher = scoped.startRevision(String(revision + 1)).watcher();
      this.watcher = watcher;
      const confirmation = awaitConfirmation(this.client, () => finish('no confirmation from etcd'));
      const finish = (reason: string, error?: unknown): void => {
        confirmation.cancel();
        this.fragments.discard();
        if (this.watcher === watcher) this.dropWatcher();
        signal.removeEventListener('abort', onAbort);
        resolve({ reason, error });
      };
      const onAbort = (): void => finish('stopped');
      signal.addEventListener('abort', onAbort, { once: true });
      watcher
        .on('connected', () => {
          if (this.watcher !== watcher) return;
          this.confirmed = true;
          confirmation.confirmed();
          if (this.troubled) {
            this.troubled = false;
            this.options.logger.log(`resynced the watch on ${this.options.parent} at revision ${revision}`);
          }
        })
        .on('data', (response: IWatchResponse) => this.apply(response, epoch))
        .on('disconnected', (error: Error) => finish(`disconnected: ${describeEtcdFailure(error)}`))
        .on('error', (error: Error) => finish(`cancelled: ${describeEtcdFailure(error)}`, error))
        .on('end', () => finish('ended'));
      this.queue.length = 0;
      for (const member of this.members.values()) this.enqueue(member);
    });
  }

  private pump(): void {
    if (this.queue.length >= (this.options.listTogetherFrom ?? LIST_TOGETHER_FROM) && this.listings < MAX_CONCURRENT_LISTINGS && this.apartIn !== this.epoch) {
      const waiting = this.queue.splice(0);
      this.listings += 1;
      void this.listTogether(waiting, this.epoch).finally(() => {
        this.listings -= 1;
        this.pump();
      });
    }
    while (this.listings < MAX_CONCURRENT_LISTINGS && this.queue.length > 0) {
      const member = this.queue.shift()!;
      this.listings += 1;
      void this.list(member, member.listingEpoch ?? -1).finally(() => {
        this.listings -= 1;
        this.pump();
      });
    }
  }

  /** One member's listing for watch `epoch`; a listing overtaken by a newer watch or listing is dropped. */
  private async list(member: SetMember<T>, epoch: number): Promise<void> {
    const stale = (): boolean => epoch !== this.epoch || member.listingEpoch !== epoch || this.members.get(member.segment) !== member;
    for (let attempt = 1; ; attempt += 1) {
      if (stale()) return;
      try {
        const listing = member.store.listing();
        const range = Range.prefix(member.prefix);
        let revision = '0';
        let full = false;
        for await (const page of rangePages(this.client, { key: range.start, end: range.end }, new PageSizer(this.options.maxPageKeys ?? DEFAULT_MAX_PAGE_KEYS))) {
          if (stale()) return;
          revision = page.revision;
          for (const kv of page.kvs) {
            full = !listing.add(kv);
            if (full) break;
          }
          if (full) break;
        }
        if (stale()) return;
        member.listingDone(epoch, Number(revision), listing);
        return;
      } catch (error) {
        if (stale()) return;
        // The revision pinned for the pages got compacted: a fresh listing reads at a newer one.
        if (isCompactedError(error) && attempt < MAX_LIST_RESTARTS) continue;
        member.listFailed(describeEtcdFailure(error));
        member.retryLater(retryDelayAfter(error, member.nextBackoff()));
        return;
      }
    }
  }

  /**
   * Lists `waiting` (members of watch `epoch`) with one paged read of the parent when the parent is not much
   * more than they hold (counted first), each member taking its keys by segment; otherwise one by one.
   */
  private async listTogether(waiting: SetMember<T>[], epoch: number): Promise<void> {
    const listings = new Map<SetMember<T>, StoreListing<T>>();
    const range = Range.prefix(this.options.parent);
    const scope = { key: range.start, end: range.end };
    try {
      const { count } = await this.client.kv.range({ key: Buffer.concat([this.client.prefix, scope.key]), range_end: Buffer.concat([this.client.prefix, scope.end]), count_only: true });
      if (Number(count) > waiting.length * MAX_PARENT_KEYS_PER_WAITING) {
        if (epoch !== this.epoch) return;
        this.apartIn = epoch;
        this.queue.push(...waiting.filter((member) => this.waitsFor(member, epoch)));
        return;
      }
      for (let attempt = 1; ; attempt += 1) {
        if (epoch !== this.epoch) return;
        for (const member of waiting) if (this.waitsFor(member, epoch)) listings.set(member, member.store.listing());
        const full = new Set<SetMember<T>>();
        let revision = '0';
        try {
          for await (const page of rangePages(this.client, scope, new PageSizer(this.options.maxPageKeys ?? DEFAULT_MAX_PAGE_KEYS))) {
            if (epoch !== this.epoch) return;
            revision = page.revision;
            for (const kv of page.kvs) {
              const member = this.memberOf(kv.key);
              const listing = member && listings.get(member);
              if (listing && !full.has(member) && !listing.add(kv)) full.add(member);
            }
          }
        } catch (error) {
          if (isCompactedError(error) && attempt < MAX_LIST_RESTARTS) continue;
          throw error;
        }
        if (epoch !== this.epoch) return;
        for (const [member, listing] of listings) if (this.waitsFor(member, epoch)) member.listingDone(epoch, Number(revision), listing);
        return;
      }
    } catch (error) {
      if (epoch !== this.epoch) return;
      const reason = describeEtcdFailure(error);
      for (const member of waiting) {
        if (!this.waitsFor(member, epoch)) continue;
        member.listFailed(reason);
        member.retryLater(retryDelayAfter(error, member.nextBackoff()));
      }
    }
  }

  /** True while `member` is followed and waits for a listing for watch `epoch`. */
  private waitsFor(member: SetMember<T>, epoch: number): boolean {
    return member.listingEpoch === epoch && this.members.get(member.segment) === member;
  }

  private apply(response: IWatchResponse, epoch: number): void {
    if (epoch !== this.epoch) return;
    try {
      const events = this.fragments.join(response);
      if (!events || events.length === 0) return;
      let byMember: Map<SetMember<T>, WatchEvent[]> | undefined;
      for (const event of events) {
        const member = this.memberOf(event.kv.key);
        if (!member) continue;
        byMember ??= new Map();
        const mine = byMember.get(member);
        if (mine) mine.push(event);
        else byMember.set(member, [event]);
      }
      this.eventRevision = Math.max(this.eventRevision, lastEventRevision(events));
      if (byMember) for (const [member, mine] of byMember) member.receive(mine);
    } catch (error) {
      this.options.logger.error(`failed to apply a watch event on ${this.options.parent}: ${printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS)}`);
    }
  }

  /** The member whose prefix holds `key`, by the segment after the parent; undefined for keys nobody follows. */
  private memberOf(key: Buffer): SetMember<T> | undefined {
    const start = this.parentBytes.length;
    const slash = key.subarray(start, start + MAX_SEGMENT_BYTES + 1).indexOf(SLASH);
    if (slash <= 0) return undefined;
    return this.members.get(key.toString('utf8', start, start + slash));
  }

  /** True when `error` is etcd refusing this client the parent prefix: stop, say so once, and tell the owner. */
  private refuse(error: unknown): boolean {
    const kind = classifyEtcdFailure(error);
    if (kind !== 'permission denied' || error instanceof EtcdInvalidAuthTokenError || /invalid auth token/i.test(errorMessage(error))) return false;
    const reason = describeEtcdFailure(error);
    this.refusal = reason;
    this.abort?.abort();
    this.dropWatcher();
    this.options.logger.warn(`etcd refuses a watch on ${this.options.parent} (${reason}); following each prefix on its own instead`);
    // An owner that moves the members elsewhere must not have them say "permission denied" meanwhile.
    if (!this.options.onRefused) for (const member of this.members.values()) member.listFailed(reason);
    try {
      this.options.onRefused?.(reason);
    } catch (failure) {
      this.options.logger.error(`onRefused for ${this.options.parent} threw: ${printable(errorMessage(failure), MAX_FAILURE_DETAIL_CHARS)}`);
    }
    return true;
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    this.confirmed = false;
    if (watcher) discardWatcher(watcher);
  }

  private trouble(message: string): void {
    if (this.troubled) return;
    this.troubled = true;
    this.options.logger.warn(message);
  }
}

/** One prefix of a PrefixMirrorSet, as its consumer sees it. */
class SetMember<T> implements MirrorFeed<T> {
  /** The watch (epoch) this member's state follows; undefined while it lists or before. */
  liveIn?: number;
  /** The watch a listing in flight is for. */
  listingEpoch?: number;
  /** Revision of the last listing: events up to it are in the state already. */
  listRevision = 0;
  /** Events that arrived while listing, applied after it (those past its revision). */
  private held?: WatchEvent[];
  private heldBytes = 0;
  /** Held events passed the bound: the listing is kept, then the prefix is listed again at once. */
  private heldOverflow = false;
  private published = false;
  private rejecting = false;
  private started = false;
  private lastListError?: string;
  private syncedAtMs?: number;
  private changedAtRevision = 0;
  private timer?: NodeJS.Timeout;
  private backoff?: Backoff;

  constructor(
    private readonly set: PrefixMirrorSet<T>,
    readonly segment: string,
    readonly store: PrefixStore<T>,
    private readonly consumer: MirrorConsumer<T>,
  ) {}

  get prefix(): string {
    return this.store.prefix;
  }

  get current(): MirrorSnapshot<T> {
    return this.store.current;
  }

  get unreachableReason(): string | undefined {
    return this.lastListError;
  }

  get syncedAt(): number | undefined {
    return this.syncedAtMs;
  }

  get watching(): boolean {
    return this.set.watchingFor(this);
  }

  get listed(): boolean {
    return this.published;
  }

  get revision(): number {
    return this.set.progressOf(this);
  }

  get changedAt(): number {
    return this.changedAtRevision;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.set.attach(this);
  }

  stop(): void {
    this.started = false;
    this.clearTimer();
    this.held = undefined;
    this.listingEpoch = undefined;
    this.set.detach(this);
  }

  /** Called when a listing for watch `epoch` is about to start: events from now on are held for it. */
  beginListing(epoch: number): void {
    this.clearTimer();
    this.listingEpoch = epoch;
    this.liveIn = undefined;
    this.held = [];
    this.heldBytes = 0;
    this.heldOverflow = false;
  }

  /** The listing at `revision` is in: it becomes the state, then the held events after it apply. */
  listingDone(epoch: number, revision: number, listing: { finish(): boolean }): void {
    const held = this.held;
    this.held = undefined;
    this.listingEpoch = undefined;
    this.liveIn = epoch;
    this.listRevision = revision;
    this.backoff?.reset();
    let changed = listing.finish() || !this.published;
    if (changed) this.changedAtRevision = revision;
    this.lastListError = undefined;
    this.syncedAtMs = Date.now();
    const after = held?.filter((event) => Number(event.kv.mod_revision) > revision) ?? [];
    if (after.length > 0) {
      const applied = this.store.apply(after);
      if (applied.changed) {
        changed = true;
        this.changedAtRevision = lastEventRevision(after);
      }
      if (applied.roomFreed) this.relistLater();
    }
    if (changed) this.publish();
    if (this.heldOverflow) this.set.enqueue(this);
  }

  /** Events of this prefix from the set's watch, in revision order. */
  receive(events: WatchEvent[]): void {
    if (this.held) {
      for (const event of events) {
        this.held.push(event);
        this.heldBytes += event.kv.key.length + (event.kv.value?.length ?? 0);
      }
      // A writer flooding the prefix while it lists (slow listings can be made) must not grow the heap without bound.
      if (this.held.length > MAX_HELD_EVENTS || this.heldBytes > MAX_HELD_BYTES) {
        this.held = undefined;
        this.heldOverflow = true;
      }
      return;
    }
    if (this.liveIn === undefined) return;
    // The watch may still deliver revisions the listing already holds: replaying them would go back in time.
    const fresh = Number(events[0].kv.mod_revision) > this.listRevision ? events : events.filter((event) => Number(event.kv.mod_revision) > this.listRevision);
    if (fresh.length === 0) return;
    this.syncedAtMs = Date.now();
    const { changed, roomFreed } = this.store.apply(fresh);
    if (changed) {
      this.changedAtRevision = lastEventRevision(fresh);
      this.publish();
    }
    if (roomFreed) this.relistLater();
  }

  listFailed(reason: string): void {
    this.lastListError = reason;
    try {
      this.consumer.mirrorListFailed(this, reason);
    } catch (error) {
      this.store.logger.error(`the consumer of ${this.prefix} threw on a failed list: ${printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS)}`);
    }
  }

  nextBackoff(): number {
    return (this.backoff ??= new Backoff(RECOVERY_BACKOFF)).next();
  }

  retryLater(ms: number): void {
    this.clearTimer();
    this.listingEpoch = undefined;
    this.held = undefined;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.set.enqueue(this);
    }, ms);
  }

  /** Keys a cap left out were never stored: only a listing takes them in. Events keep applying until it starts. */
  private relistLater(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.set.enqueue(this);
    }, ROOM_RELIST_DELAY_MS);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** As PrefixMirror's: a consumer that throws keeps what it had; the next change offers it the whole state again. */
  private publish(): void {
    this.published = true;
    try {
      this.consumer.mirrorChanged(this, this.store.current);
    } catch (error) {
      if (!this.rejecting) {
        const reason = printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS);
        this.store.logger.error(`a consumer of ${this.prefix} rejected an update (${reason}); the next change offers it the whole state again`);
      }
      this.rejecting = true;
      return;
    }
    if (this.rejecting) {
      this.rejecting = false;
      this.store.logger.log(`the consumer of ${this.prefix} accepts updates again`);
    }
  }
}

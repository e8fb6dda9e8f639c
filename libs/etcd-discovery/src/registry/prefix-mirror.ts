import { Range, type Etcd3, type IWatchResponse, type Watcher } from 'etcd3';
import { Backoff, errorMessage, RECOVERY_BACKOFF, sleep } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { telemetry } from '../telemetry/index.js';
import { describeEtcdFailure, isCompactedError, retryDelayAfter, MAX_FAILURE_DETAIL_CHARS } from './etcd-failure.js';
import { capsOf } from './mirror-caps.js';
import { PageSizer, rangePages, type RangeScope } from './paged-range.js';
import type { MirrorFeed, MirrorSnapshot, PrefixMirrorOptions } from './prefix-mirror-options.js';
import { entriesOf, lastEventRevision, PrefixStore } from './prefix-mirror-store.js';
import { awaitConfirmation } from './watch-confirmation.js';
import { discardWatcher } from './discard-watcher.js';
import { WatchFragments } from './watch-fragments.js';

export type { MirrorEntry, MirrorFeed, MirrorSnapshot, PrefixMirrorOptions } from './prefix-mirror-options.js';

/** A watch that lived this long before dying counts as healthy: the next resync starts fast. */
const HEALTHY_WATCH_MS = 5_000;
/** Deletes come in bursts: wait this long before listing again to take in keys a cap had left out. */
const ROOM_RELIST_DELAY_MS = 2_000;
/** Listings restarted in a row because their revision was compacted meanwhile, before backing off. */
const MAX_LIST_RESTARTS = 3;
const DEFAULT_MAX_PAGE_KEYS = 1_000;
const ROOM_FREED = 'room freed under a cap';

/**
 * Keeps a local copy of every key under a prefix: list at revision R (paged, every page at R), watch
 * from R + 1, apply events by key. etcd3's watcher dies for good on compaction or a lost auth token and
 * replays unreliably after reconnects (docs/field-notes.md), so on ANY watch trouble we list again, diff
 * and watch again. The last state stays in place meanwhile: an unreachable etcd never empties it.
 * Nothing a consumer or a record throws reaches etcd3 or grpc-js: etcd3 rethrows listener errors on a
 * later tick, which kills the process. Watch events change the state in place and hand consumers the
 * live map: copying 9,000 entries per write made a writer's rate alone saturate a client.
 */
export class PrefixMirror<T> implements MirrorFeed<T> {
  /** What etcd holds as far as we know (within the caps). */
  private readonly store: PrefixStore<T>;
  private readonly fragments = new WatchFragments();
  private published = false;
  private rejecting = false;
  private revisionNow = 0;
  private changedAtRevision = 0;
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private watcher?: Watcher;
  private endWatch?: (reason: string) => void;
  private troubled = false;
  private lastListError?: string;
  private syncedAtMs?: number;
  private confirmedWatch?: Watcher;
  private readonly sizer: PageSizer;
  private readonly scope: RangeScope;

  constructor(
    private readonly client: Etcd3,
    private readonly options: PrefixMirrorOptions<T>,
  ) {
    this.store = new PrefixStore<T>(options.prefix, entriesOf(options.decode), capsOf(options), options.logger, options.seed);
    this.sizer = new PageSizer(options.maxPageKeys ?? DEFAULT_MAX_PAGE_KEYS);
    const range = Range.prefix(options.prefix);
    this.scope = options.exactKey ? { key: Buffer.from(options.prefix) } : { key: range.start, end: range.end };
  }

  /** The live state; it changes in place as events arrive: copy what you keep. */
  get current(): MirrorSnapshot<T> {
    return this.store.current;
  }

  get listed(): boolean {
    return this.published;
  }

  get revision(): number {
    return this.revisionNow;
  }

  get changedAt(): number {
    return this.changedAtRevision;
  }

  /** Why the last list failed (see `describeEtcdFailure`), while etcd stays unlisted; undefined after a successful list. */
  get unreachableReason(): string | undefined {
    return this.lastListError;
  }

  /** When the state last matched etcd for sure: the last listing, or the last watch event applied (ms since the epoch). */
  get syncedAt(): number | undefined {
    return this.syncedAtMs;
  }

  /** A watch etcd confirmed is live: changes arrive as they happen, so an old `syncedAt` only means no change. */
  get watching(): boolean {
    return this.confirmedWatch !== undefined && this.confirmedWatch === this.watcher;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops at once: a list still in flight (etcd down: it may take its whole deadline) is ignored when it ends. */
  stop(): void {
    this.abort.abort();
    this.dropWatcher();
  }

  private async run(): Promise<void> {
    const backoff = new Backoff(RECOVERY_BACKOFF);
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const startedAt = Date.now();
      let failure: unknown;
      try {
        const revision = await this.list();
        if (signal.aborted) break;
        const reason = await this.watchFrom(revision + 1);
        if (signal.aborted) break;
        if (reason === ROOM_FREED) {
          await sleep(ROOM_RELIST_DELAY_MS, signal);
          continue;
        }
        this.trouble(`watch on ${this.options.prefix} ended (${reason}); listing again`);
        telemetry.watchResynced(this.options.prefix);
        if (Date.now() - startedAt > HEALTHY_WATCH_MS) backoff.reset();
      } catch (error) {
        if (signal.aborted) break;
        failure = error;
        this.listFailed(describeEtcdFailure(error));
      }
      await sleep(failure === undefined ? backoff.next() : retryDelayAfter(failure, backoff.next()), signal);
    }
  }

  private async list(): Promise<number> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.listOnce();
      } catch (error) {
        // The revision pinned for the pages got compacted: a fresh listing reads at a newer one.
        if (!isCompactedError(error) || attempt >= MAX_LIST_RESTARTS || this.abort.signal.aborted) throw error;
      }
    }
  }

  private async listOnce(): Promise<number> {
    const listing = this.store.listing();
    let revision = '0';
    let full = false;
    for await (const page of rangePages(this.client, this.scope, this.sizer)) {
      revision = page.revision;
      for (const kv of page.kvs) {
        full = !listing.add(kv);
        if (full) break;
      }
      if (full || this.abort.signal.aborted) break;
    }
    if (this.abort.signal.aborted) return Number(revision);
    const changed = listing.finish() || !this.published;
    this.revisionNow = Math.max(this.revisionNow, Number(revision));
    if (changed) this.changedAtRevision = Number(revision);
    this.lastListError = undefined;
    this.syncedAtMs = Date.now();
    if (changed) this.publish();
    if (this.troubled) {
      this.troubled = false;
      this.options.logger.log(`resynced ${this.options.prefix} at revision ${revision}`);
    }
    return Number(revision);
  }

  /** Resolves with the reason the watch stopped; the caller lists again. */
  private watchFrom(startRevision: number): Promise<string> {
    return new Promise((resolve) => {
      const builder = this.client.watch();
      const scoped = this.options.exactKey ? builder.key(this.options.prefix) : builder.prefix(this.options.prefix);
      // etcd splits a revision larger than a message (one delete of 20 x 1 MiB keys) into fragments only when
      // asked; otherwise that one response, over the receive limit, kills the stream every watch shares.
      // etcd3 builds the request in a private field and has no setter for it.
      (scoped as unknown as { request: { fragment?: boolean } }).request.fragment = true;
      const watcher = scoped.startRevision(String(startRevision)).watcher();
      this.watcher = watcher;
      const confirmation = awaitConfirmation(this.client, () => finish('no confirmation from etcd'));
      const finish = (reason: string): void => {
        confirmation.cancel();
        this.fragments.discard();
        if (this.watcher === watcher) this.dropWatcher();
        if (this.endWatch === finish) this.endWatch = undefined;
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve(reason);
      };
      const onAbort = (): void => finish('stopped');
      this.endWatch = finish;
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      watcher
        .on('connected', () => {
          this.confirmedWatch = watcher;
          confirmation.confirmed();
        })
        .on('data', (response: IWatchResponse) => this.apply(response))
        .on('disconnected', (error: Error) => finish(`disconnected: ${describeEtcdFailure(error)}`))
        .on('error', (error: Error) => finish(`cancelled: ${describeEtcdFailure(error)}`))
        .on('end', () => finish('ended'));
    });
  }

  private apply(response: IWatchResponse): void {
    try {
      const events = this.fragments.join(response);
      if (!events || events.length === 0) return;
      this.syncedAtMs = Date.now();
      const revision = lastEventRevision(events);
      this.revisionNow = Math.max(this.revisionNow, revision);
      const { changed, roomFreed } = this.store.apply(events);
      if (changed) {
        this.changedAtRevision = revision;
        this.publish();
      }
      // Keys a cap left out were never stored: a listing is the only way to take them in now.
      if (roomFreed) this.endWatch?.(ROOM_FREED);
    } catch (error) {
      this.options.logger.error(`failed to apply a watch event on ${this.options.prefix}: ${printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS)}`);
    }
  }

  /**
   * Hands the consumer the whole state. A consumer that throws keeps what it had (it publishes only what
   * it built); the next change offers it the whole state again.
   */
  private publish(): void {
    this.published = true;
    try {
      this.options.onChange(this.store.current);
    } catch (error) {
      if (!this.rejecting) {
        const reason = printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS);
        this.options.logger.error(`a consumer of ${this.options.prefix} rejected an update (${reason}); the next change offers it the whole state again`);
      }
      this.rejecting = true;
      return;
    }
    if (this.rejecting) {
      this.rejecting = false;
      this.options.logger.log(`the consumer of ${this.options.prefix} accepts updates again`);
    }
  }

  private listFailed(reason: string): void {
    this.lastListError = reason;
    this.trouble(`cannot list ${this.options.prefix} (${reason}); keeping the last known list`);
    try {
      this.options.onListFailed?.(reason);
    } catch (error) {
      this.options.logger.error(`onListFailed for ${this.options.prefix} threw: ${printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS)}`);
    }
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) discardWatcher(watcher);
  }

  private trouble(message: string): void {
    if (this.troubled) return;
    this.troubled = true;
    this.options.logger.warn(message);
  }
}

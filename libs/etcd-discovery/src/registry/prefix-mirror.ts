import type { Logger } from '@nestjs/common';
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { Backoff, errorMessage, RECOVERY_BACKOFF, sleep } from '../common/backoff.js';

export interface MirrorEntry<T> {
  /** Revision that created the key: orders records by age. */
  readonly createRevision: string;
  readonly modRevision: string;
  readonly value: T;
}

export type MirrorSnapshot<T> = ReadonlyMap<string, MirrorEntry<T>>;

export interface PrefixMirrorOptions<T> {
  readonly prefix: string;
  /** Mirror exactly the key `prefix` instead of every key under it. */
  readonly exactKey?: boolean;
  /** Turns a raw key-value into what the mirror keeps; raw buffers are not retained. */
  readonly decode: (key: string, kv: IKeyValue) => T;
  /** Called with a new immutable snapshot after the first list and after every change. */
  readonly onChange: (snapshot: MirrorSnapshot<T>) => void;
  readonly logger: Logger;
}

/** A watch that lived this long before dying counts as healthy: the next resync starts fast. */
const HEALTHY_WATCH_MS = 5_000;
/** A watch etcd has not confirmed by then is given up and the prefix listed again. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Keeps a local copy of every key under a prefix: list at revision R, watch from R + 1, apply
 * events by key. etcd3's watcher dies for good on compaction or a lost auth token and replays
 * unreliably after reconnects (FIELD-NOTES), so on ANY watch trouble we list again, diff and
 * watch again. The last snapshot stays in place meanwhile: an unreachable etcd never empties it.
 */
export class PrefixMirror<T> {
  private snapshot: Map<string, MirrorEntry<T>> = new Map();
  private readonly abort = new AbortController();
  private running?: Promise<void>;
  private watcher?: Watcher;
  private troubled = false;
  private synced = false;
  private lastListError?: string;

  constructor(
    private readonly client: Etcd3,
    private readonly options: PrefixMirrorOptions<T>,
  ) {}

  get current(): MirrorSnapshot<T> {
    return this.snapshot;
  }

  /** Why the last list failed, while etcd stays unreachable; undefined after a successful list. */
  get unreachableReason(): string | undefined {
    return this.lastListError;
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
      try {
        const revision = await this.list();
        if (signal.aborted) break;
        const reason = await this.watchFrom(revision + 1);
        if (signal.aborted) break;
        this.trouble(`watch on ${this.options.prefix} ended (${reason}); listing again`);
        if (Date.now() - startedAt > HEALTHY_WATCH_MS) backoff.reset();
      } catch (error) {
        if (signal.aborted) break;
        this.lastListError = errorMessage(error);
        this.trouble(`etcd unreachable for ${this.options.prefix} (${this.lastListError}); keeping the last known list`);
      }
      await sleep(backoff.next(), signal);
    }
  }

  private async list(): Promise<number> {
    const { prefix, exactKey } = this.options;
    const response = await (exactKey ? this.client.get(prefix) : this.client.getAll().prefix(prefix)).exec();
    const next = new Map<string, MirrorEntry<T>>();
    for (const kv of response.kvs) {
      const key = kv.key.toString();
      const known = this.snapshot.get(key);
      next.set(key, known?.modRevision === kv.mod_revision ? known : this.entry(key, kv));
    }
    this.lastListError = undefined;
    const first = !this.synced;
    this.synced = true;
    if (first || !sameEntries(this.snapshot, next)) this.publish(next);
    if (this.troubled) {
      this.troubled = false;
      this.options.logger.log(`resynced ${this.options.prefix} at revision ${response.header.revision}`);
    }
    return Number(response.header.revision);
  }

  /** Resolves with the reason the watch stopped; the caller lists again. */
  private watchFrom(startRevision: number): Promise<string> {
    return new Promise((resolve) => {
      const builder = this.client.watch();
      const scoped = this.options.exactKey ? builder.key(this.options.prefix) : builder.prefix(this.options.prefix);
      const watcher = scoped.startRevision(String(startRevision)).watcher();
      this.watcher = watcher;
      const timeout = setTimeout(() => finish('no confirmation from etcd'), CONNECT_TIMEOUT_MS);
      const finish = (reason: string): void => {
        clearTimeout(timeout);
        if (this.watcher === watcher) this.dropWatcher();
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve(reason);
      };
      const onAbort = (): void => finish('stopped');
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      watcher
        .on('connected', () => clearTimeout(timeout))
        .on('data', (response: IWatchResponse) => this.apply(response))
        .on('disconnected', (error: Error) => finish(`disconnected: ${errorMessage(error)}`))
        .on('error', (error: Error) => finish(`cancelled: ${errorMessage(error)}`))
        .on('end', () => finish('ended'));
    });
  }

  private apply(response: IWatchResponse): void {
    // etcd3 rethrows listener errors on a later tick, which would crash the process: contain them.
    try {
      if (response.events.length === 0) return;
      const next = new Map(this.snapshot);
      for (const event of response.events) {
        const key = event.kv.key.toString();
        if (event.type === 'Delete') next.delete(key);
        else next.set(key, this.entry(key, event.kv));
      }
      this.publish(next);
    } catch (error) {
      this.options.logger.error(`failed to apply a watch event on ${this.options.prefix}: ${errorMessage(error)}`);
    }
  }

  private entry(key: string, kv: IKeyValue): MirrorEntry<T> {
    return { createRevision: kv.create_revision, modRevision: kv.mod_revision, value: this.options.decode(key, kv) };
  }

  private publish(next: Map<string, MirrorEntry<T>>): void {
    this.snapshot = next;
    this.options.onChange(next);
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (!watcher) return;
    watcher.removeAllListeners();
    watcher.on('error', () => undefined);
    watcher.cancel().catch(() => undefined);
  }

  private trouble(message: string): void {
    if (this.troubled) return;
    this.troubled = true;
    this.options.logger.warn(message);
  }
}

function sameEntries<T>(a: MirrorSnapshot<T>, b: MirrorSnapshot<T>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, entry] of a) {
    if (b.get(key)?.modRevision !== entry.modRevision) return false;
  }
  return true;
}

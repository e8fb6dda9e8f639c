import type { Logger } from '@nestjs/common';
import type { IKeyValue, IWatchResponse } from 'etcd3';
import { errorMessage } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { brokenCap, CapWarning, type MirrorCaps } from './mirror-caps.js';
import { MAX_KEY_BYTES_AFTER_PREFIX, OverlongKeys } from './overlong-keys.js';
import type { MirrorEntry, MirrorSnapshot } from './prefix-mirror-options.js';

/** What the store keeps per key: the entry consumers see, plus its raw size for `maxBytes`. */
export interface StoredEntry<T> extends MirrorEntry<T> {
  readonly bytes: number;
}

export type WatchEvent = IWatchResponse['events'][number];

/** Where a store can read another mirror's live state of the same prefix. */
export interface MirrorSource<T> {
  readonly current: MirrorSnapshot<T>;
}

/**
 * Turns a raw key-value under `prefix` into the entry the store keeps (`bytes`: its raw key and value size);
 * a throw leaves the key out. An entry may be its own `value`: one object per key instead of two.
 */
export type EntryMaker<T> = (prefix: string, key: string, kv: IKeyValue, bytes: number) => StoredEntry<T>;

/** The EntryMaker of a plain decoder: `{ createRevision, modRevision, value, bytes }`. */
export function entriesOf<T>(decode: (key: string, kv: IKeyValue) => T): EntryMaker<T> {
  return (_prefix, key, kv, bytes) => {
    const value = decode(key, kv);
    const createRevision = kv.create_revision;
    // Most records are written once: one string for both revisions.
    const modRevision = kv.mod_revision === createRevision ? createRevision : kv.mod_revision;
    return { createRevision, modRevision, value, bytes };
  };
}

export interface AppliedEvents {
  readonly changed: boolean;
  /** Over a cap, and a key left or shrank: keys the cap left out may fit now, and only a listing can take them in. */
  readonly roomFreed: boolean;
}

/**
 * The keys of one prefix as far as etcd has told us, within the caps: what a listing found, then changed in
 * place by watch events. Keeps a mirror's rules in one place whoever feeds it (a watch of its own, or one
 * watch shared by every prefix of a namespace): keys over 512 bytes after the prefix are never read, keys
 * past a cap are ignored (one warning), a key whose decode throws is left out (one warning per key).
 * Whatever a client follows thousands of is made on first need: most prefixes never see a bad key.
 */
export class PrefixStore<T> {
  private state = new Map<string, StoredEntry<T>>();
  private bytes = 0;
  private capped = false;
  /** Keys whose decode threw; shared and empty until one does. */
  private undecodable: Set<string> = NONE;
  private overlong?: OverlongKeys;
  private capWarning?: CapWarning;
  private readonly keyLimit: number;
  private seed?: MirrorSource<T>;

  constructor(
    readonly prefix: string,
    private readonly makeEntry: EntryMaker<T>,
    readonly caps: MirrorCaps,
    readonly logger: Logger,
    /**
     * Another mirror of the same prefix that this store takes over from: until its first listing is in, this
     * store keeps the entries that mirror holds at the revision etcd lists, as they are, instead of decoding
     * copies (a client would hold both while their lists are alike). Read when the listing arrives, not now:
     * the other one may list meanwhile.
     */
    seed?: MirrorSource<T>,
  ) {
    this.keyLimit = Buffer.byteLength(prefix) + MAX_KEY_BYTES_AFTER_PREFIX;
    this.seed = seed;
  }

  /** The live state; it changes in place as events arrive. */
  get current(): MirrorSnapshot<T> {
    return this.state;
  }

  /** Starts a listing; what it collects replaces the state on `finish()`. */
  listing(): StoreListing<T> {
    return new StoreListing(this);
  }

  /** Applies watch events of this prefix, in revision order. */
  apply(events: readonly WatchEvent[]): AppliedEvents {
    const state = this.state;
    const sizeBefore = state.size;
    const bytesBefore = this.bytes;
    let bytes = bytesBefore;
    let changed = false;
    let unknownDeleted = false;
    let broken: string | undefined;
    for (const event of events) {
      if (this.refuses(event.kv.key)) continue;
      const key = event.kv.key.toString();
      const old = state.get(key);
      if (old) {
        state.delete(key);
        bytes -= old.bytes;
        changed = true;
      }
      if (event.type === 'Delete') {
        unknownDeleted ||= !old && !this.undecodable.has(key);
        this.undecodable.delete(key);
        continue;
      }
      const cap = brokenCap(this.caps, state.size + 1, bytes + event.kv.key.length + event.kv.value.length);
      if (cap) broken = cap;
      const entry = cap ? undefined : this.entryFor(key, event.kv, undefined, this.undecodable);
      if (!entry) continue;
      state.set(key, entry);
      bytes += entry.bytes;
      changed = true;
    }
    // A deleted key we never stored is, while over a cap, most likely one the cap left out.
    const freed = unknownDeleted || state.size < sizeBefore || bytes < bytesBefore;
    this.bytes = bytes;
    if (broken) {
      this.capped = true;
      (this.capWarning ??= new CapWarning(this.prefix, this.logger)).crossed(broken);
    }
    return { changed, roomFreed: this.capped && freed };
  }

  /** True (logged once per key) for a key too long to be read. */
  refuses(key: Buffer): boolean {
    if (key.length <= this.keyLimit) return false;
    return (this.overlong ??= new OverlongKeys(this.prefix, this.logger)).refuses(key);
  }

  /** @internal For StoreListing: the stored entry for `kv` (the known one if unchanged); undefined if decode throws. */
  entryFor(key: string, kv: IKeyValue, known: StoredEntry<T> | undefined, failing: Set<string>): StoredEntry<T> | undefined {
    if (known?.modRevision === kv.mod_revision) return known;
    try {
      const entry = this.makeEntry(this.prefix, key, kv, kv.key.length + kv.value.length);
      failing.delete(key);
      return entry;
    } catch (error) {
      if (!this.undecodable.has(key)) this.logger.warn(`${this.prefix}: skipping ${printable(key)}: ${printable(errorMessage(error))}`);
      if (failing === NONE) {
        failing = new Set();
        this.undecodable = failing;
      }
      failing.add(key);
      return undefined;
    }
  }

  /** @internal For StoreListing. */
  known(key: string): StoredEntry<T> | undefined {
    return this.state.get(key) ?? (this.seed?.current.get(key) as StoredEntry<T> | undefined);
  }

  /** @internal For StoreListing: the listing's result becomes the state; true if it differs from the last one. */
  replace(next: Map<string, StoredEntry<T>>, bytes: number, failing: Set<string>, broken: string | undefined): boolean {
    const changed = !sameEntries(this.state, next);
    this.state = next;
    this.seed = undefined;
    this.bytes = bytes;
    this.undecodable = failing.size > 0 ? failing : NONE;
    this.capped = broken !== undefined;
    if (broken) (this.capWarning ??= new CapWarning(this.prefix, this.logger)).crossed(broken);
    else this.capWarning?.cleared();
    return changed;
  }
}

/** One listing of a prefix, fed key by key in key order. */
export class StoreListing<T> {
  private readonly next = new Map<string, StoredEntry<T>>();
  private readonly failing = new Set<string>();
  private bytes = 0;
  private broken?: string;

  constructor(private readonly store: PrefixStore<T>) {}

  /** Takes in one listed key; false once a cap is reached: stop reading. */
  add(kv: IKeyValue): boolean {
    if (this.broken) return false;
    if (this.store.refuses(kv.key)) return true;
    this.broken = brokenCap(this.store.caps, this.next.size + 1, this.bytes + kv.key.length + kv.value.length);
    if (this.broken) return false;
    const key = kv.key.toString();
    const entry = this.store.entryFor(key, kv, this.store.known(key), this.failing);
    if (!entry) return true;
    this.next.set(key, entry);
    this.bytes += entry.bytes;
    return true;
  }

  /** Replaces the store's state; true if it changed. */
  finish(): boolean {
    return this.store.replace(this.next, this.bytes, this.failing, this.broken);
  }
}

/** The revision of the last of `events` (a delete's key-value carries the revision of the delete). */
export function lastEventRevision(events: readonly WatchEvent[]): number {
  return events.length === 0 ? 0 : Number(events[events.length - 1].kv.mod_revision);
}

/** The empty key set every store starts with; never added to (see entryFor). */
const NONE: Set<string> = new Set();

/** The same keys at the same revisions. */
export function sameEntries<T>(a: MirrorSnapshot<T>, b: MirrorSnapshot<T>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, entry] of a) {
    if (b.get(key)?.modRevision !== entry.modRevision) return false;
  }
  return true;
}

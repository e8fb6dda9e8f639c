import type { Logger } from '@nestjs/common';
import type { IKeyValue } from 'etcd3';

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
  /** Turns a raw key-value into what the mirror keeps; raw buffers are not retained. A key it throws on is left out. */
  readonly decode: (key: string, kv: IKeyValue) => T;
  /** Called with a new immutable snapshot after the first list and after every change; if it throws, `current` stays as it was. */
  readonly onChange: (snapshot: MirrorSnapshot<T>) => void;
  /** Called with `unreachableReason` each time a list fails. */
  readonly onListFailed?: (reason: string) => void;
  readonly logger: Logger;
  /** Most keys kept (default 10,000): in key order when listing, new keys while watching; the rest is ignored. */
  readonly maxEntries?: number;
  /** Most raw key and value bytes kept (default 32 MiB), applied like `maxEntries`. */
  readonly maxBytes?: number;
  /** Most keys per range request (default 1,000); pages get smaller when values are large. */
  readonly maxPageKeys?: number;
  /** Another mirror of this prefix that this one takes over from: see PrefixStore's `seed`. */
  readonly seed?: { readonly current: MirrorSnapshot<T> };
}

/** One prefix's mirror as a consumer reads it, whether a watch of its own feeds it or one shared by a namespace. */
export interface MirrorFeed<T> {
  /** The live state; it changes in place as events arrive: copy what you keep. */
  readonly current: MirrorSnapshot<T>;
  /** Why the last list failed, while etcd stays unlisted; undefined after a successful list. */
  readonly unreachableReason: string | undefined;
  /** When the state last matched etcd for sure: the last listing, or the last watch event applied (ms since the epoch). */
  readonly syncedAt: number | undefined;
  /** A watch etcd confirmed is live. */
  readonly watching: boolean;
  /** Listed at least once. */
  readonly listed: boolean;
  /** The etcd revision `current` is complete up to (0 before the first listing). */
  readonly revision: number;
  /** The etcd revision of the last change to `current`; a listing that changed it counts at its own revision. */
  readonly changedAt: number;
  start(): void;
  stop(): void;
}

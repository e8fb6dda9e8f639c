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
}

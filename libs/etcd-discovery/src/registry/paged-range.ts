import type { IKeyValue, IRangeResponse, Namespace } from 'etcd3';
import { isResponseTooLarge } from './etcd-failure.js';

/** First page of a list: large enough that a service of small records lists in one or two round trips. */
const INITIAL_PAGE_KEYS = 500;
/**
 * Bytes a page aims for: well under the 16 MiB receive limit our client sets, and under grpc-js'
 * 4 MiB default too, so a mirror given another client still pages without hitting the limit.
 */
const TARGET_PAGE_BYTES = 2 * 1024 * 1024;
const ZERO_BYTE = Buffer.from([0]);

/**
 * How many keys to ask etcd for per page. Values differ by six orders of magnitude (a 100-byte record,
 * a 1.5 MiB junk value), so the size follows what the last page weighed, halves when a page was too
 * large to receive and grows back (at most doubling) after pages that fit.
 */
export class PageSizer {
  private limit: number;

  constructor(private readonly maxKeys: number) {
    this.limit = Math.max(1, Math.min(INITIAL_PAGE_KEYS, maxKeys));
  }

  get keys(): number {
    return this.limit;
  }

  /** False when already at one key: that single value is over the receive limit. */
  shrink(): boolean {
    if (this.limit <= 1) return false;
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    return true;
  }

  /** After a page of `count` keys weighing `bytes` arrived. */
  fitted(count: number, bytes: number): void {
    if (count === 0) return;
    const fits = Math.floor(TARGET_PAGE_BYTES / Math.max(1, bytes / count));
    this.limit = Math.max(1, Math.min(this.limit * 2, fits, this.maxKeys));
  }
}

export interface RangePage {
  readonly kvs: readonly IKeyValue[];
  /** The revision every page of this listing is read at: the first page's header revision. */
  readonly revision: string;
}

export interface RangeScope {
  readonly key: Buffer;
  /** Exclusive end; none reads exactly `key`. */
  readonly end?: Buffer;
}

/**
 * Reads `scope` page by page, every page at the revision of the first one, so the pages add up to the
 * state at one revision whatever is written meanwhile. etcd3's range builders expose neither a start
 * revision nor a continuation key, hence its low-level KV client. A compacted revision surfaces as an
 * error (see `isCompactedError`): the caller starts over. Keys come back relative to the client's namespace.
 */
export async function* rangePages(client: Namespace, scope: RangeScope, sizer: PageSizer): AsyncGenerator<RangePage> {
  const namespace = client.prefix;
  const end = scope.end && Buffer.concat([namespace, scope.end]);
  let start = Buffer.concat([namespace, scope.key]);
  let revision: string | undefined;
  for (;;) {
    let response: IRangeResponse;
    try {
      response = await client.kv.range({ key: start, range_end: end, limit: end ? sizer.keys : 0, revision: revision ?? 0 });
    } catch (error) {
      if (end && isResponseTooLarge(error) && sizer.shrink()) continue;
      throw error;
    }
    revision ??= response.header.revision;
    sizer.fitted(response.kvs.length, response.kvs.reduce((sum, kv) => sum + kv.key.length + kv.value.length, 0));
    const last = response.kvs.at(-1)?.key;
    const kvs = namespace.length === 0 ? response.kvs : response.kvs.map((kv) => ({ ...kv, key: kv.key.subarray(namespace.length) }));
    yield { kvs, revision };
    if (!end || !response.more || !last) return;
    // The smallest key after `last`: the next page starts right behind this one.
    start = Buffer.concat([last, ZERO_BYTE]);
  }
}

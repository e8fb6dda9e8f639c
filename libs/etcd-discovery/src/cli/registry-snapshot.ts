import { Range, type Etcd3, type IKeyValue } from 'etcd3';
import { buildInstanceList, decodeEntry, type DecodedEntry, type InstanceListResult } from '../discovery/instance-list.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import { brokenCap, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES } from '../registry/mirror-caps.js';
import { MAX_KEY_BYTES_AFTER_PREFIX } from '../registry/overlong-keys.js';
import { PageSizer, rangePages } from '../registry/paged-range.js';
import type { MirrorEntry } from '../registry/prefix-mirror.js';
import { servicePrefix } from '../registry/registry-keys.js';

/** Most keys per range request, as a client's mirror asks for; pages shrink when values are large. */
const MAX_PAGE_KEYS = 1_000;
const SLASH = 0x2f;
/** Bytes of an over-long key kept to name it. */
const KEY_HEAD_BYTES = 200;

/** One key as etcd listed it, without its value. */
export interface ListedKey {
  /** The whole key; for an over-long key only its first bytes (see `keyBytes`). */
  readonly key: string;
  readonly keyBytes: number;
  readonly valueBytes: number;
  /** Decimal lease id; '0' for none. */
  readonly lease: string;
  readonly createRevision: string;
  readonly modRevision: string;
}

export interface ServiceListing {
  readonly service: string;
  readonly prefix: string;
  /** Every key under the prefix, in key order. */
  readonly keys: readonly ListedKey[];
  /** Keys clients do not read: too long after the prefix. */
  readonly overlong: readonly ListedKey[];
  /** Where a client's per-service caps stop it reading, if they do. */
  readonly capped?: { readonly cap: string; readonly firstIgnored: ListedKey; readonly ignored: number };
  /** What a client's mirror holds: each key decoded by the library's own decoder. */
  readonly entries: ReadonlyMap<string, MirrorEntry<DecodedEntry>>;
  /** The library's own list: routable instances, and why every other key is skipped. */
  readonly list: InstanceListResult;
}

export interface RegistrySnapshot {
  readonly namespace: string;
  /** The revision every page was read at. */
  readonly revision: string;
  readonly services: readonly ServiceListing[];
  /** Keys under the namespace outside any `<namespace>/<service>/` prefix. */
  readonly stray: readonly ListedKey[];
}

interface ServiceBuilder {
  readonly prefixBytes: number;
  readonly keys: ListedKey[];
  readonly overlong: ListedKey[];
  readonly entries: Map<string, MirrorEntry<DecodedEntry>>;
  bytes: number;
  capped?: { cap: string; firstIgnored: ListedKey; ignored: number };
}

/**
 * Reads every key under the namespace (or one service) at one revision, page by page, and reads each
 * service the way a client does: over-long keys and keys past the caps left out, the rest decoded and
 * turned into an instance list by the library's own code. Values are decoded page by page, never kept.
 */
export async function readRegistry(client: Etcd3, namespace: string, policy: AddressPolicy, service?: string): Promise<RegistrySnapshot> {
  const scope = Range.prefix(service === undefined ? `${namespace}/` : servicePrefix(namespace, service));
  const namespaceBytes = Buffer.byteLength(`${namespace}/`);
  const builders = new Map<string, ServiceBuilder>();
  const stray: ListedKey[] = [];
  let revision = '0';
  for await (const page of rangePages(client, { key: scope.start, end: scope.end }, new PageSizer(MAX_PAGE_KEYS))) {
    revision = page.revision;
    for (const kv of page.kvs) {
      const slash = kv.key.indexOf(SLASH, namespaceBytes);
      if (slash <= namespaceBytes) {
        stray.push(listedKey(kv, kv.key.toString()));
        continue;
      }
      const name = kv.key.subarray(namespaceBytes, slash).toString();
      let builder = builders.get(name);
      if (!builder) {
        builder = { prefixBytes: slash + 1, keys: [], overlong: [], entries: new Map(), bytes: 0 };
        builders.set(name, builder);
      }
      add(builder, kv, servicePrefix(namespace, name), policy);
    }
  }
  const services = [...builders].map(([name, builder]): ServiceListing => ({
    service: name,
    prefix: servicePrefix(namespace, name),
    keys: builder.keys,
    overlong: builder.overlong,
    capped: builder.capped,
    entries: builder.entries,
    list: buildInstanceList(builder.entries, policy),
  }));
  services.sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  return { namespace, revision, services, stray };
}

function add(builder: ServiceBuilder, kv: IKeyValue, prefix: string, policy: AddressPolicy): void {
  if (kv.key.length > builder.prefixBytes + MAX_KEY_BYTES_AFTER_PREFIX) {
    const listed = listedKey(kv, kv.key.subarray(0, KEY_HEAD_BYTES).toString());
    builder.keys.push(listed);
    builder.overlong.push(listed);
    return;
  }
  const key = kv.key.toString();
  const listed = listedKey(kv, key);
  builder.keys.push(listed);
  if (builder.capped) {
    builder.capped.ignored += 1;
    return;
  }
  const cap = brokenCap({ maxEntries: DEFAULT_MAX_ENTRIES, maxBytes: DEFAULT_MAX_BYTES }, builder.entries.size + 1, builder.bytes + kv.key.length + kv.value.length);
  if (cap) {
    builder.capped = { cap, firstIgnored: listed, ignored: 1 };
    return;
  }
  builder.bytes += kv.key.length + kv.value.length;
  builder.entries.set(key, { createRevision: kv.create_revision, modRevision: kv.mod_revision, value: decodeEntry(prefix, key, kv.value, policy) });
}

function listedKey(kv: IKeyValue, key: string): ListedKey {
  return { key, keyBytes: kv.key.length, valueBytes: kv.value.length, lease: kv.lease, createRevision: kv.create_revision, modRevision: kv.mod_revision };
}

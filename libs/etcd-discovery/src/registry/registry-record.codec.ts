import { printable } from '../common/printable.js';
import { formatHostPort, parseHostPort, type HostPort } from './address.js';
import { wellKnownMetadata } from './well-known-metadata.js';

/**
 * One live instance as clients see it. The wire format is etcd's own naming format
 * (`go.etcd.io/etcd/client/v3/naming/endpoints`): `{"Addr":"10.0.0.7:50051","Metadata":{...}}`.
 */
export interface ServiceInstance {
  readonly id: string;
  readonly key: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Deep-frozen; at most 8 levels, 64 keys per object, 32 KiB of JSON. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export type DecodeResult =
  | { readonly ok: true; readonly address: HostPort; readonly metadata: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: string };

/**
 * Anything read from etcd may have been written by a buggy or hostile process, so a record is
 * bounded before anything walks it: a 10 KB value nested 5,000 levels deep parses fine, but every
 * later JSON.stringify of it throws (stack overflow). These bounds are above what a registration
 * writes (options allow 16 KiB of user metadata, to which the registrar adds a few fields).
 */
export const MAX_RECORD_BYTES = 64 * 1024;
export const MAX_METADATA_BYTES = 32 * 1024;
export const MAX_METADATA_DEPTH = 8;
export const MAX_METADATA_KEYS = 64;
export const MAX_METADATA_ARRAY = 256;

/** Go's deprecated `naming.Update` used Op 1 for a delete left in place. */
const GO_NAMING_OP_DELETE = 1;
/** The record object and its `Metadata` sit above the metadata's own levels. */
const MAX_RECORD_DEPTH = MAX_METADATA_DEPTH + 1;

export function encodeRecord(address: HostPort, metadata: Readonly<Record<string, unknown>>): string {
  return JSON.stringify({ Addr: formatHostPort(address), Metadata: metadata });
}

/**
 * Reads our JSON records, Go's endpoints JSON, and the plain `host:port` values of older registrars.
 * Never throws; a valid result is frozen and safe to stringify, compare and log.
 */
export function decodeRecord(value: Buffer | string): DecodeResult {
  const size = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  if (size > MAX_RECORD_BYTES) return reject(`value of ${size} bytes exceeds ${MAX_RECORD_BYTES}`);
  const text = (typeof value === 'string' ? value : value.toString('utf8')).trim();
  if (!text.startsWith('{')) {
    const address = parseHostPort(text);
    return address ? { ok: true, address, metadata: EMPTY } : reject(`not JSON and not host:port: ${preview(text)}`);
  }
  if (nestingExceeds(text, MAX_RECORD_DEPTH)) return reject(`JSON nested deeper than ${MAX_METADATA_DEPTH} levels in "Metadata"`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return reject(`invalid JSON: ${preview(text)}`);
  }
  if (!isPlainObject(parsed)) return reject('JSON is not an object');
  if (parsed.Op === GO_NAMING_OP_DELETE) return reject('record marks a deleted endpoint (Op 1)');
  if (typeof parsed.Addr !== 'string') return reject('"Addr" is missing or not a string');
  const address = parseHostPort(parsed.Addr);
  if (!address) return reject(`"Addr" is not host:port: ${preview(parsed.Addr)}`);
  const metadata = parsed.Metadata ?? EMPTY;
  if (!isPlainObject(metadata)) return reject('"Metadata" is not an object');
  const problem = shapeProblem(metadata, 1);
  if (problem) return reject(`"Metadata" ${problem}`);
  const bytes = Buffer.byteLength(metadataKey(metadata));
  if (bytes > MAX_METADATA_BYTES) return reject(`"Metadata" is ${bytes} bytes of JSON, over ${MAX_METADATA_BYTES}`);
  deepFreeze(metadata);
  wellKnownMetadata(metadata);
  return { ok: true, address, metadata };
}

/**
 * The comparison key of a decoded metadata object: its JSON, computed once per record (decoded
 * metadata is frozen, so the key cannot go stale) and cached by identity.
 */
export function metadataKey(metadata: Readonly<Record<string, unknown>>): string {
  let key = keys.get(metadata);
  if (key === undefined) {
    key = JSON.stringify(metadata);
    keys.set(metadata, key);
  }
  return key;
}

const keys = new WeakMap<object, string>();
const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});

function reject(reason: string): DecodeResult {
  return { ok: false, reason };
}

function preview(text: string): string {
  return `"${printable(text, 40)}"`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True once brackets outside strings nest deeper than `limit`; a linear scan, before parsing. */
function nestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c) i++; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      if (++depth > limit) return true;
    } else if (char === 0x7d || char === 0x5d) depth--;
  }
  return false;
}

/** Keys per object and items per array; depth is bounded by the scan, so this recursion is too. */
function shapeProblem(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_METADATA_DEPTH) return `is nested deeper than ${MAX_METADATA_DEPTH} levels`;
  if (Array.isArray(value)) {
    if (value.length > MAX_METADATA_ARRAY) return `has an array of ${value.length} items, over ${MAX_METADATA_ARRAY}`;
    for (const item of value) {
      const problem = shapeProblem(item, depth + 1);
      if (problem) return problem;
    }
  } else {
    const entries = Object.keys(value);
    if (entries.length > MAX_METADATA_KEYS) return `has an object of ${entries.length} keys, over ${MAX_METADATA_KEYS}`;
    for (const key of entries) {
      const problem = shapeProblem((value as Record<string, unknown>)[key], depth + 1);
      if (problem) return problem;
    }
  }
  return undefined;
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

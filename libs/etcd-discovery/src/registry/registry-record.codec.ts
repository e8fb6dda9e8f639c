import { printable } from '../common/printable.js';
import { formatHostPort, parseHostPort, type HostPort } from '../common/host-port.js';
import { MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_RECORD_BYTES, metadataShapeProblem } from '../options/metadata-rules.js';
import { isKratosRecord, readKratosRecord } from './kratos-record.js';

export { MAX_METADATA_ARRAY, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_METADATA_KEYS, MAX_RECORD_BYTES } from '../options/metadata-rules.js';

export type DecodeResult =
  | { readonly ok: true; readonly address: HostPort; readonly metadata: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: string };

/** Go's deprecated `naming.Update` used Op 1 for a delete left in place. */
const GO_NAMING_OP_DELETE = 1;
/** The record object and its `Metadata` sit above the metadata's own levels. */
const MAX_RECORD_DEPTH = MAX_METADATA_DEPTH + 1;

export function encodeRecord(address: HostPort, metadata: Readonly<Record<string, unknown>>): string {
  return JSON.stringify({ Addr: formatHostPort(address), Metadata: metadata });
}

/**
 * Reads our JSON records, Go's endpoints JSON, Kratos' ServiceInstance JSON and the plain `host:port`
 * values of older registrars.
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
  if (isKratosRecord(parsed)) {
    const kratos = readKratosRecord(parsed);
    return typeof kratos === 'string' ? reject(kratos) : bounded(kratos.address, kratos.metadata);
  }
  if (parsed.Op === GO_NAMING_OP_DELETE) return reject('record marks a deleted endpoint (Op 1)');
  if (typeof parsed.Addr !== 'string') return reject('"Addr" is missing or not a string');
  const address = parseHostPort(parsed.Addr);
  if (!address) return reject(`"Addr" is not host:port: ${preview(parsed.Addr)}`);
  const metadata = parsed.Metadata ?? EMPTY;
  if (!isPlainObject(metadata)) return reject('"Metadata" is not an object');
  return bounded(address, metadata);
}

/** Metadata within the bounds every reader relies on, frozen. */
function bounded(address: HostPort, metadata: Record<string, unknown>): DecodeResult {
  const problem = metadataShapeProblem(metadata);
  if (problem) return reject(`"Metadata" ${problem}`);
  // Measured, not kept: most records are never compared by content (an unchanged record keeps its identity).
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  if (bytes > MAX_METADATA_BYTES) return reject(`"Metadata" is ${bytes} bytes of JSON, over ${MAX_METADATA_BYTES}`);
  deepFreeze(metadata);
  return { ok: true, address, metadata };
}

/**
 * The comparison key of a decoded metadata object: its JSON, computed when first needed (a record's new
 * version compared with its old one) and cached by identity (decoded metadata is frozen, so it cannot go
 * stale). Safe on any decoded record: decoding bounded its depth.
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

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

import { formatHostPort, parseHostPort, type HostPort } from './address.js';

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
  readonly metadata: Readonly<Record<string, unknown>>;
}

export type DecodeResult =
  | { readonly ok: true; readonly address: HostPort; readonly metadata: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: string };

/** Larger values are not records: refusing them early keeps a hostile write from costing memory. */
export const MAX_RECORD_BYTES = 64 * 1024;

/** Go's deprecated `naming.Update` used Op 1 for a delete left in place. */
const GO_NAMING_OP_DELETE = 1;

export function encodeRecord(address: HostPort, metadata: Readonly<Record<string, unknown>>): string {
  return JSON.stringify({ Addr: formatHostPort(address), Metadata: metadata });
}

/** Reads our JSON records, Go's endpoints JSON, and the plain `host:port` values of older registrars. */
export function decodeRecord(value: Buffer | string): DecodeResult {
  const size = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  if (size > MAX_RECORD_BYTES) return reject(`value of ${size} bytes exceeds ${MAX_RECORD_BYTES}`);
  const text = (typeof value === 'string' ? value : value.toString('utf8')).trim();
  if (!text.startsWith('{')) {
    const address = parseHostPort(text);
    return address ? { ok: true, address, metadata: {} } : reject(`not JSON and not host:port: ${preview(text)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return reject(`invalid JSON: ${preview(text)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return reject('JSON is not an object');
  const record = parsed as Record<string, unknown>;
  if (record.Op === GO_NAMING_OP_DELETE) return reject('record marks a deleted endpoint (Op 1)');
  if (typeof record.Addr !== 'string') return reject('"Addr" is missing or not a string');
  const address = parseHostPort(record.Addr);
  if (!address) return reject(`"Addr" is not host:port: ${preview(record.Addr)}`);
  const metadata = record.Metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    return reject('"Metadata" is not an object');
  }
  return { ok: true, address, metadata: metadata as Record<string, unknown> };
}

function reject(reason: string): DecodeResult {
  return { ok: false, reason };
}

function preview(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 40 ? `${clean.slice(0, 40)}...` : clean);
}

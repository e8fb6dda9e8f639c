import { describe, expect, it } from 'vitest';
import {
  decodeRecord,
  encodeRecord,
  MAX_METADATA_ARRAY,
  MAX_METADATA_BYTES,
  MAX_METADATA_DEPTH,
  MAX_METADATA_KEYS,
  MAX_RECORD_BYTES,
  metadataKey,
  type DecodeResult,
} from './registry-record.codec.js';

function accepted(result: DecodeResult): Extract<DecodeResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected the record to decode, got: ${result.reason}`);
  return result;
}

function rejected(result: DecodeResult): string {
  if (result.ok) throw new Error(`expected the record to be rejected, got ${JSON.stringify(result)}`);
  return result.reason;
}

describe('encodeRecord', () => {
  it.each([
    ['IPv4', { host: '10.0.0.7', port: 50051 }, '10.0.0.7:50051'],
    ['hostname', { host: 'greeter-0.greeter.svc', port: 8080 }, 'greeter-0.greeter.svc:8080'],
    ['IPv6', { host: '::1', port: 50051 }, '[::1]:50051'],
  ])('writes etcd naming JSON for %s', (_label, address, addr) => {
    const metadata = { version: '1.2.0', weight: 2 };
    expect(JSON.parse(encodeRecord(address, metadata))).toEqual({ Addr: addr, Metadata: metadata });
  });
});

describe('decodeRecord roundtrip', () => {
  it.each([
    ['IPv4', { host: '10.0.0.7', port: 50051 }],
    ['hostname', { host: 'greeter.example.com', port: 1 }],
    ['IPv6', { host: '::1', port: 50051 }],
    ['IPv6 full', { host: '2001:db8::7', port: 65_535 }],
  ])('%s survives encode then decode, as a string and as a Buffer', (_label, address) => {
    const metadata = { zone: 'eu-1', nested: { tags: ['a', 'b'] } };
    const encoded = encodeRecord(address, metadata);
    for (const value of [encoded, Buffer.from(encoded)]) {
      const result = accepted(decodeRecord(value));
      expect(result.address).toEqual(address);
      expect(result.metadata).toEqual(metadata);
    }
  });
});

describe('decodeRecord accepts what other registrars write', () => {
  it.each([
    ['Go endpoints JSON with null Metadata', '{"Addr":"10.0.0.7:50051","Metadata":null}', { host: '10.0.0.7', port: 50051 }, {}],
    ['Go endpoints JSON without Metadata', '{"Addr":"10.0.0.7:50051"}', { host: '10.0.0.7', port: 50051 }, {}],
    ['old Go naming with Op 0', '{"Op":0,"Addr":"10.0.0.7:50051","Metadata":{"v":1}}', { host: '10.0.0.7', port: 50051 }, { v: 1 }],
    ['plain host:port', '10.0.0.7:50051', { host: '10.0.0.7', port: 50051 }, {}],
    ['plain host:port with whitespace and a newline', '  greeter.local:9000\n', { host: 'greeter.local', port: 9000 }, {}],
    ['plain [v6]:port', '[fe80::1]:443', { host: 'fe80::1', port: 443 }, {}],
    ['JSON surrounded by whitespace', '\n {"Addr":"a:1"} \n', { host: 'a', port: 1 }, {}],
  ])('%s', (_label, value, address, metadata) => {
    const result = accepted(decodeRecord(Buffer.from(value)));
    expect(result.address).toEqual(address);
    expect(result.metadata).toEqual(metadata);
  });
});

describe('decodeRecord rejects garbage with a reason', () => {
  it.each([
    ['random bytes', Buffer.from([0xff, 0xfe, 0x00, 0x9c, 0x01, 0x80]), /not JSON and not host:port/],
    ['invalid JSON', '{"Addr":', /invalid JSON: "\{"Addr":"/],
    ['a JSON array', '[{"Addr":"10.0.0.7:50051"}]', /not JSON and not host:port/],
    ['a JSON number', '42', /not JSON and not host:port: "42"/],
    ['an empty value', '', /not JSON and not host:port/],
    ['Op 1 (deleted endpoint)', '{"Op":1,"Addr":"10.0.0.7:50051"}', /deleted endpoint \(Op 1\)/],
    ['a missing Addr', '{"Metadata":{}}', /"Addr" is missing or not a string/],
    ['a numeric Addr', '{"Addr":50051}', /"Addr" is missing or not a string/],
    ['an Addr without port', '{"Addr":"host"}', /"Addr" is not host:port: "host"/],
    ['port 0', '{"Addr":"10.0.0.7:0"}', /"Addr" is not host:port: "10\.0\.0\.7:0"/],
    ['port 70000', '{"Addr":"10.0.0.7:70000"}', /"Addr" is not host:port/],
    ['a host with a space', '{"Addr":"a b:1"}', /"Addr" is not host:port: "a b:1"/],
    ['an unbracketed IPv6 Addr', '{"Addr":"::1:50051"}', /"Addr" is not host:port/],
    ['Metadata as an array', '{"Addr":"a:1","Metadata":["x"]}', /"Metadata" is not an object/],
    ['Metadata as a string', '{"Addr":"a:1","Metadata":"zone=eu"}', /"Metadata" is not an object/],
    ['plain text with a bad port', 'greeter:99999', /not JSON and not host:port: "greeter:99999"/],
  ])('%s', (_label, value, reason) => {
    expect(rejected(decodeRecord(value))).toMatch(reason);
  });

  it('replaces control characters and truncates long values in the reason', () => {
    const reason = rejected(decodeRecord(`bad\u0001${'x'.repeat(100)}`));
    expect(reason).toContain('"bad\\u0001xxxx');
    expect(reason).toContain('...(104 chars)"');
    expect(reason.length).toBeLessThan(120);
  });

  it('rejects a value over MAX_RECORD_BYTES without reading it', () => {
    // A valid record padded with whitespace: if it were parsed, it would decode fine.
    const big = Buffer.alloc(1024 * 1024, 0x20);
    big.write('{"Addr":"10.0.0.7:50051"}', 0);
    expect(rejected(decodeRecord(big))).toBe(`value of ${1024 * 1024} bytes exceeds ${MAX_RECORD_BYTES}`);
    expect(accepted(decodeRecord(big.subarray(0, MAX_RECORD_BYTES))).address).toEqual({ host: '10.0.0.7', port: 50051 });
  });

  it('counts string size in UTF-8 bytes, not characters', () => {
    const text = `{"Addr":"a:1","Metadata":{"s":"${'é'.repeat(MAX_RECORD_BYTES / 2)}"}}`;
    expect(text.length).toBeLessThan(MAX_RECORD_BYTES + 100);
    expect(rejected(decodeRecord(text))).toMatch(/exceeds 65536/);
  });
});

describe('decodeRecord bounds what it keeps', () => {
  const nested = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

  it('refuses Metadata nested 5,000 levels deep (a 10 KB value) before parsing it', () => {
    const value = `{"Addr":"127.0.0.1:1","Metadata":{"weight":${nested(5_000)}}}`;
    expect(value.length).toBeLessThan(MAX_RECORD_BYTES);
    const result = decodeRecord(value);
    expect(result).toEqual({ ok: false, reason: `JSON nested deeper than ${MAX_METADATA_DEPTH} levels in "Metadata"` });
  });

  it('accepts Metadata exactly at the depth limit and refuses one level more', () => {
    // Metadata is level 1; its weight array adds levels 2..8.
    const at = decodeRecord(`{"Addr":"127.0.0.1:1","Metadata":{"weight":${nested(MAX_METADATA_DEPTH - 1)}}}`);
    expect(at.ok).toBe(true);
    const over = decodeRecord(`{"Addr":"127.0.0.1:1","Metadata":{"weight":${nested(MAX_METADATA_DEPTH)}}}`);
    expect(over.ok).toBe(false);
  });

  it('is not fooled by brackets inside strings', () => {
    const result = decodeRecord(JSON.stringify({ Addr: '127.0.0.1:1', Metadata: { note: '[[[[[[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{' } }));
    expect(result.ok).toBe(true);
  });

  it.each([
    ['too many keys', { ...Object.fromEntries(Array.from({ length: MAX_METADATA_KEYS + 1 }, (_, i) => [`k${i}`, i])) }, /keys, over/],
    ['a long array', { list: Array.from({ length: MAX_METADATA_ARRAY + 1 }, () => 0) }, /items, over/],
    ['too many bytes', { a: 'x'.repeat(MAX_METADATA_BYTES) }, /bytes of JSON, over/],
  ])('refuses Metadata with %s', (_label, metadata, reason) => {
    const result = decodeRecord(JSON.stringify({ Addr: '127.0.0.1:1', Metadata: metadata }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(reason);
  });

  it('returns deep-frozen metadata that stringifies, with one cached comparison key', () => {
    const result = decodeRecord(JSON.stringify({ Addr: '127.0.0.1:1', Metadata: { zone: 'a', nested: { list: [1, { x: 2 }] } } }));
    if (!result.ok) throw new Error(result.reason);
    expect(Object.isFrozen(result.metadata)).toBe(true);
    expect(Object.isFrozen((result.metadata.nested as { list: unknown[] }).list[1])).toBe(true);
    expect(metadataKey(result.metadata)).toBe('{"zone":"a","nested":{"list":[1,{"x":2}]}}');
  });

  it('never throws, whatever the bytes', () => {
    for (let i = 0; i < 2_000; i++) {
      const bytes = Buffer.from(Array.from({ length: (i % 97) + 1 }, (_, j) => (i * 31 + j * 7) % 256));
      expect(() => decodeRecord(Buffer.concat([Buffer.from('{"Addr":'), bytes]))).not.toThrow();
    }
  });
});

describe('Kratos records', () => {
  const kratos = (fields: Record<string, unknown>): string =>
    JSON.stringify({ id: 'host-1', name: 'greeter', version: 'v1.2.0', metadata: { zone: 'eu-1', weight: '3' }, ...fields });

  it('takes the grpc:// endpoint, whatever comes before it, with version and a numeric weight in the metadata', () => {
    const result = accepted(decodeRecord(kratos({ endpoints: ['http://10.0.0.7:8000', 'grpc://10.0.0.7:9000?isSecure=false'] })));
    expect(result.address).toEqual({ host: '10.0.0.7', port: 9000 });
    expect(result.metadata).toEqual({ zone: 'eu-1', weight: 3, version: 'v1.2.0' });
    expect(Object.isFrozen(result.metadata)).toBe(true);
  });

  it('reads IPv6 endpoints and records without metadata or version', () => {
    const result = accepted(decodeRecord(JSON.stringify({ id: 'x', name: 'greeter', endpoints: ['grpc://[::1]:9000'] })));
    expect(result.address).toEqual({ host: '::1', port: 9000 });
    expect(result.metadata).toEqual({});
  });

  it.each([
    ['no grpc endpoint', { endpoints: ['http://10.0.0.7:8000'] }, /no grpc:\/\/ endpoint/],
    ['an empty endpoint list', { endpoints: [] }, /no grpc:\/\/ endpoint/],
    ['an endpoint without a port', { endpoints: ['grpc://10.0.0.7'] }, /not host:port/],
    ['metadata that is not an object', { endpoints: ['grpc://10.0.0.7:9000'], metadata: 'zone=eu' }, /"metadata" is not an object/],
    ['metadata past the bounds', { endpoints: ['grpc://10.0.0.7:9000'], metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, /over 64/],
  ])('rejects %s', (_label, fields, reason) => {
    expect(rejected(decodeRecord(kratos(fields)))).toMatch(reason);
  });

  it('keeps a weight that is not a whole number as the string it is (the weight rule then counts it as 1)', () => {
    expect(accepted(decodeRecord(kratos({ endpoints: ['grpc://10.0.0.7:9000'], metadata: { weight: 'heavy' } }))).metadata.weight).toBe('heavy');
  });
});

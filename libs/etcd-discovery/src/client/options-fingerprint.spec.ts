import { describe, expect, it } from 'vitest';
import { optionsFingerprint } from './options-fingerprint.js';

/** Stands in for grpc-js ChannelCredentials: a class instance JSON would flatten to {}. */
class FakeCredentials {
  constructor(readonly secure: boolean) {}
}

describe('optionsFingerprint', () => {
  it('ignores key order at every depth', () => {
    const a = { package: 'greeter', protoPath: 'g.proto', loader: { keepCase: true, includeDirs: ['a'] }, channelOptions: { x: 1, y: 2 } };
    const b = { channelOptions: { y: 2, x: 1 }, loader: { includeDirs: ['a'], keepCase: true }, protoPath: 'g.proto', package: 'greeter' };
    expect(optionsFingerprint(a)).toBe(optionsFingerprint(b));
  });

  it.each([
    ['a different value', { package: 'greeter' }, { package: 'billing' }],
    ['a different nested value', { loader: { keepCase: true } }, { loader: { keepCase: false } }],
    ['an extra key', { package: 'greeter' }, { package: 'greeter', protoPath: 'g.proto' }],
    ['array order', { includeDirs: ['a', 'b'] }, { includeDirs: ['b', 'a'] }],
    ['a number versus its string', { maxSendMessageLength: 1 }, { maxSendMessageLength: '1' }],
    ['null versus an empty object', { loader: null }, { loader: {} }],
  ])('differs for %s', (_label, a, b) => {
    expect(optionsFingerprint(a)).not.toBe(optionsFingerprint(b));
  });

  it('tells two credential objects apart even when their fields are equal', () => {
    const first = new FakeCredentials(true);
    const second = new FakeCredentials(true);
    expect(JSON.stringify(first)).toBe(JSON.stringify(second));
    expect(optionsFingerprint({ credentials: first })).not.toBe(optionsFingerprint({ credentials: second }));
  });

  it('gives the same credential instance the same fingerprint every time', () => {
    const credentials = new FakeCredentials(false);
    expect(optionsFingerprint({ package: 'g', credentials })).toBe(optionsFingerprint({ credentials, package: 'g' }));
  });

  it('compares buffers by identity too', () => {
    const cert = Buffer.from('pem');
    expect(optionsFingerprint({ cert })).toBe(optionsFingerprint({ cert }));
    expect(optionsFingerprint({ cert })).not.toBe(optionsFingerprint({ cert: Buffer.from('pem') }));
  });

  it('compares functions by identity', () => {
    const interceptor = (): void => undefined;
    const lookalike = (): void => undefined;
    expect(optionsFingerprint({ interceptors: [interceptor] })).toBe(optionsFingerprint({ interceptors: [interceptor] }));
    expect(optionsFingerprint({ interceptors: [interceptor] })).not.toBe(optionsFingerprint({ interceptors: [lookalike] }));
  });

  it('treats prototype-less objects as plain data', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 });
    expect(optionsFingerprint({ x: bare })).toBe(optionsFingerprint({ x: { a: 1, b: 2 } }));
  });

  it('does not mutate its input', () => {
    const input = Object.freeze({ b: Object.freeze([Object.freeze({ d: 1, c: 2 })]), a: 'x' });
    optionsFingerprint(input);
    expect(Object.keys(input)).toEqual(['b', 'a']);
  });

  it('never lets a string pass for an identity tag', () => {
    const fn = (): void => undefined;
    const tagged = optionsFingerprint({ a: fn });
    for (const lookalike of ['@0', '@1', '#fn0', 's@0', tagged]) {
      expect(optionsFingerprint({ a: lookalike })).not.toBe(tagged);
    }
  });
});

describe('optionsFingerprint with grpc-js credentials', () => {
  it('maps credentials grpc-js calls equal to one fingerprint: a fresh createInsecure() per call is one client', async () => {
    const { credentials } = await import('@grpc/grpc-js');
    const insecure = optionsFingerprint({ credentials: credentials.createInsecure() });
    expect(optionsFingerprint({ credentials: credentials.createInsecure() })).toBe(insecure);
    const ssl = credentials.createSsl();
    expect(optionsFingerprint({ credentials: ssl })).not.toBe(insecure);
    expect(optionsFingerprint({ credentials: ssl })).toBe(optionsFingerprint({ credentials: ssl }));
    // grpc-js compares SSL credentials by their secure context: two createSsl() calls are two channels.
    expect(optionsFingerprint({ credentials: credentials.createSsl() })).not.toBe(optionsFingerprint({ credentials: ssl }));
  });
});

describe('optionsFingerprint with cycles', () => {
  it('never overflows the stack: the object a cycle returns to counts by identity', () => {
    const loader: Record<string, unknown> = { keepCase: true };
    loader.self = loader;
    const fingerprint = optionsFingerprint({ loader });
    expect(optionsFingerprint({ loader })).toBe(fingerprint);
    const other: Record<string, unknown> = { keepCase: true };
    other.self = other;
    expect(optionsFingerprint({ loader: other })).not.toBe(fingerprint);
  });
});

import { describe, expect, it } from 'vitest';
import { formatHostPort, isValidHost, isValidPort, parseHostPort } from './host-port.js';

describe('parseHostPort', () => {
  it.each([
    ['10.0.0.7:50051', { host: '10.0.0.7', port: 50051 }],
    ['localhost:1', { host: 'localhost', port: 1 }],
    ['greeter-0.greeter.svc.cluster.local:65535', { host: 'greeter-0.greeter.svc.cluster.local', port: 65_535 }],
    ['[::1]:50051', { host: '::1', port: 50051 }],
    ['[2001:db8::7]:443', { host: '2001:db8::7', port: 443 }],
    ['[::ffff:10.0.0.1]:80', { host: '::ffff:10.0.0.1', port: 80 }],
  ])('parses %s', (text, expected) => {
    expect(parseHostPort(text)).toEqual(expected);
  });

  it.each([
    [''],
    ['host'],
    ['host:'],
    [':50051'],
    ['10.0.0.7:0'],
    ['10.0.0.7:65536'],
    ['10.0.0.7:123456'],
    ['10.0.0.7:-1'],
    ['10.0.0.7:80x'],
    ['::1:50051'],
    ['[::1]'],
    ['[10.0.0.7]:80'],
    ['[not-v6]:80'],
    ['a b:1'],
    ['-bad:1'],
    ['bad-:1'],
    ['a..b:1'],
    ['a_b:1'],
    [' 10.0.0.7:1'],
    ['http://10.0.0.7:1'],
    [`${'a'.repeat(64)}:1`],
  ])('rejects %j', (text) => {
    expect(parseHostPort(text)).toBeUndefined();
  });
});

describe('formatHostPort', () => {
  it.each([
    [{ host: '10.0.0.7', port: 50051 }, '10.0.0.7:50051'],
    [{ host: 'greeter.local', port: 80 }, 'greeter.local:80'],
    [{ host: '::1', port: 50051 }, '[::1]:50051'],
    [{ host: '2001:db8::7', port: 1 }, '[2001:db8::7]:1'],
  ])('formats %j as %s, which parses back', (address, text) => {
    expect(formatHostPort(address)).toBe(text);
    expect(parseHostPort(text)).toEqual(address);
  });
});

describe('isValidHost', () => {
  it.each([
    ['10.0.0.7', true],
    ['::1', true],
    ['fe80::1', true],
    ['localhost', true],
    ['a', true],
    ['greeter-0.svc', true],
    [`${'a'.repeat(63)}.com`, true],
    ['[::1]', false],
    ['', false],
    ['a b', false],
    ['-a', false],
    ['a-', false],
    ['a_b', false],
    ['a..b', false],
    ['.a', false],
    ['a.', false],
    [`${'a'.repeat(64)}.com`, false],
    [`${'a.'.repeat(126)}ab`, false],
    ['10.0.0.7:80', false],
    ['999.1.1.1', false],
    ['10.0.0', false],
    ['3com.example', true],
  ])('%j -> %s', (host, expected) => {
    expect(isValidHost(host)).toBe(expected);
  });
});

describe('isValidPort', () => {
  it.each([
    [1, true],
    [65_535, true],
    [0, false],
    [65_536, false],
    [1.5, false],
    [Number.NaN, false],
    ['80', false],
    [undefined, false],
  ])('%j -> %s', (port, expected) => {
    expect(isValidPort(port)).toBe(expected);
  });
});

describe('IPv4 addresses spelled as names', () => {
  it.each(['0xa9fea9fe', '0xA9.0xFE.0xA9.0xFE', '0x0', '0x7f000001', '0x7f.1', '127.1', 'a.0x10', 'host.123', '0x'])(
    'refuses %s (the resolver would read it as an IPv4 address)',
    (host) => {
      expect(isValidHost(host)).toBe(false);
      expect(parseHostPort(`${host}:50051`)).toBeUndefined();
    },
  );

  it.each(['0xcafe.example', 'x0a', 'a1.b2', 'greeter.internal', 'host-123'])('still takes %s as a name', (host) => {
    expect(isValidHost(host)).toBe(true);
  });
});

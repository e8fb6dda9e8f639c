import { describe, expect, it } from 'vitest';
import { canonicalHost, endpointKey } from '../common/host-port.js';
import { AddressPolicy } from './address-policy.js';

describe('AddressPolicy (default)', () => {
  const policy = new AddressPolicy();

  it.each([
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['::', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['ff02::1', /multicast/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['::ffff:169.254.169.254', /link-local/],
    ['::ffff:0.0.0.0', /unspecified/],
  ])('refuses %s', (host, reason) => {
    const refusal = policy.refusal(host);
    expect(refusal).toMatch(/^address policy: /);
    expect(refusal).toMatch(reason);
  });

  it.each(['127.0.0.1', '10.0.0.7', '192.168.1.20', '8.8.8.8', '::1', 'fd00::1', '2001:db8::1', 'greeter.internal', 'localhost'])(
    'allows %s',
    (host) => {
      expect(policy.refusal(host)).toBeUndefined();
    },
  );
});

describe('AddressPolicy (allow list)', () => {
  const policy = new AddressPolicy(['10.0.0.0/8', '::1', '*.svc.cluster.local', 'greeter.internal', '169.254.10.0/24']);

  it.each(['10.1.2.3', '::1', 'a.svc.cluster.local', 'x.y.svc.cluster.local', 'GREETER.internal.', '169.254.10.5'])('allows %s', (host) => {
    expect(policy.refusal(host)).toBeUndefined();
  });

  it.each([
    ['11.0.0.1', /not in allowedAddresses/],
    ['127.0.0.1', /not in allowedAddresses/],
    ['svc.cluster.local', /not in allowedAddresses/],
    ['evil.example', /not in allowedAddresses/],
    ['169.254.169.254', /not in allowedAddresses/],
    ['0.0.0.0', /unspecified/],
  ])('refuses %s', (host, reason) => {
    expect(policy.refusal(host)).toMatch(reason);
  });

  it('never allows unspecified or multicast, even when a range contains them', () => {
    const wide = new AddressPolicy(['0.0.0.0/0', '::/0']);
    expect(wide.refusal('0.0.0.0')).toMatch(/unspecified/);
    expect(wide.refusal('224.0.0.1')).toMatch(/multicast/);
    expect(wide.refusal('10.0.0.1')).toBeUndefined();
  });
});

describe('canonicalHost and endpointKey', () => {
  it.each([
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['Greeter.Internal.', 'greeter.internal'],
    ['10.0.0.1', '10.0.0.1'],
  ])('%s -> %s', (host, canonical) => {
    expect(canonicalHost(host)).toBe(canonical);
  });

  it('gives localhost, 127.0.0.1 and its IPv4-mapped form one key', () => {
    const keys = new Set(['localhost', 'LOCALHOST', '127.0.0.1', '::ffff:127.0.0.1'].map((host) => endpointKey({ host, port: 50051 })));
    expect([...keys]).toEqual(['127.0.0.1:50051']);
    expect(endpointKey({ host: '::1', port: 1 })).toBe('[::1]:1');
  });
});

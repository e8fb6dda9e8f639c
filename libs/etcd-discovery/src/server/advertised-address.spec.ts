import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { advertisedHost } from './advertised-address.js';

function nic(address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo {
  const common = { address, netmask: family === 'IPv4' ? '255.255.255.0' : 'ffff:ffff:ffff:ffff::', mac: '02:00:00:00:00:01', internal, cidr: null };
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 };
}

/** Loopback first, then an interface with only IPv6, then the IPv4 a wildcard bind should advertise. */
const MACHINE: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
  eth0: [nic('fe80::1', 'IPv6', false)],
  eth1: [nic('fe80::2', 'IPv6', false), nic('192.168.1.20', 'IPv4', false)],
  eth2: [nic('10.9.9.9', 'IPv4', false)],
  down: undefined,
};

const LOOPBACK_ONLY: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [nic('127.0.0.1', 'IPv4', true), nic('::1', 'IPv6', true)],
  eth0: [nic('fe80::1', 'IPv6', false)],
};

describe('advertisedHost', () => {
  it.each([
    ['127.0.0.1:0', '127.0.0.1'],
    ['localhost:5000', '127.0.0.1'],
    ['LOCALHOST:5000', '127.0.0.1'],
    ['localhost.localdomain:5000', '127.0.0.1'],
    ['0.0.0.0:50051', '192.168.1.20'],
    ['[::]:50051', '192.168.1.20'],
    [':50051', '192.168.1.20'],
    ['::', '192.168.1.20'],
    ['10.1.2.3:5000', '10.1.2.3'],
    ['[::1]:5000', '::1'],
    ['[2001:db8::7]:5000', '2001:db8::7'],
    ['2001:db8::7', '2001:db8::7'],
    ['greeter.internal:5000', 'greeter.internal'],
    ['dns:///myhost:5000', 'myhost'],
    ['dns://8.8.8.8/myhost:5000', 'myhost'],
    ['dns:myhost:5000', 'myhost'],
    ['ipv4:10.1.2.3:5000', '10.1.2.3'],
    ['ipv6:[::1]:5000', '::1'],
  ])('%s -> %s', (bindUrl, expected) => {
    expect(advertisedHost(bindUrl, MACHINE)).toBe(expected);
  });

  it.each([['0.0.0.0:50051'], ['[::]:50051']])('%s falls back to 127.0.0.1 without an external IPv4 interface', (bindUrl) => {
    expect(advertisedHost(bindUrl, LOOPBACK_ONLY)).toBe('127.0.0.1');
    expect(advertisedHost(bindUrl, {})).toBe('127.0.0.1');
  });
});

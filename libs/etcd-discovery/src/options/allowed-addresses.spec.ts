import { describe, expect, it } from 'vitest';
import { parseAllowEntry } from './allowed-addresses.js';

describe('parseAllowEntry', () => {
  it.each([
    ['10.0.0.0/8', { kind: 'net', network: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['10.0.0.1', { kind: 'net', network: '10.0.0.1', prefix: 32, family: 'ipv4' }],
    ['fd00::/8', { kind: 'net', network: 'fd00::', prefix: 8, family: 'ipv6' }],
    ['*.example.com', { kind: 'suffix', suffix: '.example.com' }],
    ['Host.Example', { kind: 'name', name: 'host.example' }],
  ])('reads %s', (entry, parsed) => {
    expect(parseAllowEntry(entry)).toEqual(parsed);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/x', '10.0.0.0/8/1', '::/129', '*.', '*', 'a b', '999.1.1.1', '', 7, null])('refuses %j', (entry) => {
    expect(parseAllowEntry(entry)).toBeUndefined();
  });
});

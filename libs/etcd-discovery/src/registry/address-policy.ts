import { BlockList, isIP } from 'node:net';
import { canonicalHost } from '../common/host-port.js';
import { parseAllowEntry } from '../options/allowed-addresses.js';

/**
 * Which discovered addresses a client may connect to. A record is written by whoever can write the
 * prefix, so its address is untrusted: never an address that is no destination at all
 * (unspecified, multicast, broadcast), and by default never link-local either, where cloud metadata
 * endpoints live (169.254.169.254). With an allow list, only what it names (CIDRs or host names).
 * Host names are matched as written: what DNS makes of them is DNS's (see the README's Security).
 */
export class AddressPolicy {
  private readonly allowedNets?: BlockList;
  private readonly allowedNames: readonly string[] = [];
  private readonly allowedSuffixes: readonly string[] = [];

  constructor(allow?: readonly string[]) {
    if (allow === undefined) return;
    this.allowedNets = new BlockList();
    const names: string[] = [];
    const suffixes: string[] = [];
    for (const entry of allow) {
      const parsed = parseAllowEntry(entry);
      if (!parsed) throw new Error(`not an address policy entry: ${entry}`);
      if (parsed.kind === 'net') this.allowedNets.addSubnet(parsed.network, parsed.prefix, parsed.family);
      else if (parsed.kind === 'suffix') suffixes.push(parsed.suffix);
      else names.push(parsed.name);
    }
    this.allowedNames = names;
    this.allowedSuffixes = suffixes;
  }

  /** Why `host` may not be called, or undefined when it may. */
  refusal(host: string): string | undefined {
    const canonical = canonicalHost(host);
    const family = isIP(canonical);
    if (family !== 0) {
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (NEVER.check(canonical, type)) return `address policy: ${host} is unspecified, multicast or broadcast`;
      if (this.allowedNets) return this.allowedNets.check(canonical, type) ? undefined : `address policy: ${host} is not in allowedAddresses`;
      if (LINK_LOCAL.check(canonical, type)) return `address policy: ${host} is link-local (set allowedAddresses to allow it)`;
      return undefined;
    }
    if (!this.allowedNets) return undefined;
    const name = canonical.toLowerCase();
    if (this.allowedNames.includes(name) || this.allowedSuffixes.some((suffix) => name.endsWith(suffix))) return undefined;
    return `address policy: host name ${host} is not in allowedAddresses`;
  }
}

const NEVER = new BlockList();
NEVER.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network": 0.0.0.0 reaches the local host
NEVER.addSubnet('224.0.0.0', 4, 'ipv4');
NEVER.addAddress('255.255.255.255', 'ipv4');
NEVER.addAddress('::', 'ipv6');
NEVER.addSubnet('ff00::', 8, 'ipv6');

const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');

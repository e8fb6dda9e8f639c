import { isIP } from 'node:net';
import { isValidHost } from '../common/host-port.js';

/** One entry of the `allowedAddresses` option, parsed. */
export type AllowEntry =
  | { readonly kind: 'net'; readonly network: string; readonly prefix: number; readonly family: 'ipv4' | 'ipv6' }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'suffix'; readonly suffix: string };

/** `10.0.0.0/8`, `fd00::/8`, a single IP, `host.example` or `*.example`; undefined for anything else. */
export function parseAllowEntry(entry: unknown): AllowEntry | undefined {
  if (typeof entry !== 'string') return undefined;
  const text = entry.trim().toLowerCase();
  const [address, bits, extra] = text.split('/');
  if (extra === undefined && isIP(address) !== 0) {
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    return prefix >= 0 && prefix <= max ? { kind: 'net', network: address, prefix, family } : undefined;
  }
  // Names follow the one host-name rule records are read with (numeric last labels are IPv4 in disguise).
  if (text.startsWith('*.') && isValidHost(text.slice(2)) && isIP(text.slice(2)) === 0) return { kind: 'suffix', suffix: text.slice(1) };
  return isValidHost(text) && isIP(text) === 0 ? { kind: 'name', name: text } : undefined;
}

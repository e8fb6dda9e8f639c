import { isIP } from 'node:net';

/** One entry of the `allowedAddresses` option, parsed. */
export type AllowEntry =
  | { readonly kind: 'net'; readonly network: string; readonly prefix: number; readonly family: 'ipv4' | 'ipv6' }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'suffix'; readonly suffix: string };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

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
  if (text.startsWith('*.') && HOST_NAME.test(text.slice(2))) return { kind: 'suffix', suffix: text.slice(1) };
  return HOST_NAME.test(text) && !/^[\d.]+$/.test(text) ? { kind: 'name', name: text.replace(/\.$/, '') } : undefined;
}

import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]']);
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain']);

/**
 * The host clients should dial for a server bound to `bindUrl` (Nest's `url`, e.g. `0.0.0.0:50051`):
 * a loopback bind stays loopback, a wildcard bind advertises this machine's first non-internal IPv4
 * address, any other bind address is advertised as it is.
 */
export function advertisedHost(bindUrl: string, interfaces = networkInterfaces()): string {
  const host = bindHost(bindUrl);
  if (LOOPBACK_NAMES.has(host.toLowerCase())) return '127.0.0.1';
  if (WILDCARD_HOSTS.has(host)) return firstExternalIPv4(interfaces) ?? '127.0.0.1';
  return host.replace(/^\[(.*)\]$/, '$1');
}

function bindHost(bindUrl: string): string {
  const withoutScheme = bindUrl.replace(/^(dns:|ipv4:|ipv6:)(\/\/[^/]*\/)?/, '');
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(withoutScheme);
  if (bracketed) return bracketed[1] === '::' ? '::' : bracketed[1];
  if (isIP(withoutScheme) === 6) return withoutScheme;
  return withoutScheme.replace(/:\d+$/, '');
}

function firstExternalIPv4(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | undefined {
  for (const addresses of Object.values(interfaces)) {
    const found = addresses?.find((address) => address.family === 'IPv4' && !address.internal);
    if (found) return found.address;
  }
  return undefined;
}

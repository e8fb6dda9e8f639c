import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for an IPv4/IPv6 literal (IPv6 without brackets) or an RFC 1123 host name. */
export function isValidHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  return HOSTNAME.test(host) && !endsInNumber(host);
}

/**
 * A name whose last label is a number is an IPv4 address in disguise: the system resolver reads
 * `0xa9fea9fe`, `0x7f.1` or `127.1` as 169.254.169.254 or 127.0.0.1 (as the WHATWG URL parser
 * does), which would slip past every rule about IP addresses. Such names are refused outright.
 */
function endsInNumber(host: string): boolean {
  const last = host.replace(/\.$/, '').split('.').pop() ?? '';
  return /^(?:\d+|0x[0-9a-f]*)$/i.test(last);
}

export function isValidPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65_535;
}

/** Parses `host:port` or `[v6]:port`; undefined for anything else. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  if (match[1] !== undefined && isIP(host) !== 6) return undefined;
  if (!isValidHost(host) || !isValidPort(port)) return undefined;
  return { host, port };
}

/** Formats an address the way gRPC targets and etcd's naming records write it. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One spelling per host: IPv6 compressed and lower-case, an IPv4-mapped IPv6 address as IPv4, a
 * host name lower-case without its trailing dot. Policies and de-duplication compare this form.
 */
export function canonicalHost(host: string): string {
  if (isIP(host) === 6) {
    // A zone id (fe80::1%eth0) names an interface, not another address; URL refuses it.
    const normalized = new URL(`http://[${host.replace(/%.*$/, '')}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(normalized);
    if (!mapped) return normalized;
    const [high, low] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  if (isIP(host) === 4) return host;
  return host.toLowerCase().replace(/\.$/, '');
}

/** Two records for one endpoint have one key: `localhost:p` is `127.0.0.1:p`. */
export function endpointKey({ host, port }: HostPort): string {
  const canonical = canonicalHost(host);
  return formatHostPort({ host: canonical === 'localhost' ? '127.0.0.1' : canonical, port });
}

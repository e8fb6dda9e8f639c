import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for an IPv4/IPv6 literal (IPv6 without brackets) or an RFC 1123 host name. */
export function isValidHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  // An all-numeric name would be a malformed IPv4 address (999.1.1.1), not a DNS name.
  return HOSTNAME.test(host) && !/^[\d.]+$/.test(host);
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

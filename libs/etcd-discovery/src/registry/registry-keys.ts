import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** `<namespace>/<service>/`: every instance of one service lives under this prefix. */
export function servicePrefix(namespace: string, service: string): string {
  return `${namespace}/${service}/`;
}

export function instanceKey(namespace: string, service: string, instanceId: string): string {
  return `${servicePrefix(namespace, service)}${instanceId}`;
}

/** The instance id part of a key under a service prefix; undefined for keys outside the pattern. */
export function instanceIdOf(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const id = key.slice(prefix.length);
  return id.length > 0 && !id.includes('/') ? id : undefined;
}

/** Unique per process start, so a restarted instance never overwrites a live one's key. */
export function newInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'host';
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

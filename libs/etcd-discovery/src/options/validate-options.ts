import { isIP } from 'node:net';
import { isValidHost, isValidPort } from '../common/host-port.js';
import { parseAllowEntry } from './allowed-addresses.js';
import { metadataShapeProblem, WELL_KNOWN_RULES } from './metadata-rules.js';
import {
  DEFAULT_DISCOVERY_TIMEOUT_MS,
  DEFAULT_DRAIN_DELAY_MS,
  DEFAULT_HEALTH_SERVICE,
  DEFAULT_HOSTS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_NAMESPACE,
  DEFAULT_NAMESPACE_WATCH_FROM,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_TTL_SECONDS,
  MIN_KEEPALIVE_INTERVAL_MS,
  MIN_TTL_SECONDS,
} from './defaults.js';
import type { EtcdDiscoveryModuleOptions, RegistrationOptions } from './etcd-discovery-options.interface.js';
import { failOption as fail } from './invalid-options.error.js';
import type { ResolvedDiscoveryOptions, ResolvedRegistration } from './resolved-options.js';

export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const NAMESPACE_PATTERN = /^\/?[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const MAX_METADATA_BYTES = 16 * 1024;
/** Fields the registrar adds to every record's metadata; counted when checking the user's part fits. */
const ADDED_METADATA = { grpcServices: [], startedAt: '2026-01-01T00:00:00.000Z' };

interface NumberRule {
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  readonly unit: string;
}

const NUMBER_RULES: Record<string, NumberRule> = {
  'etcd.requestTimeoutMs': { min: 100, max: 300_000, integer: true, unit: 'milliseconds' },
  'etcd.keepaliveIntervalMs': { min: 0, max: 3_600_000, integer: true, unit: 'milliseconds' },
  'server.ttlSeconds': { min: MIN_TTL_SECONDS, max: 3_600, integer: true, unit: 'seconds' },
  'server.drainDelayMs': { min: 0, max: 300_000, integer: true, unit: 'milliseconds' },
  'server.shutdownTimeoutMs': { min: 0, max: 3_600_000, integer: true, unit: 'milliseconds' },
  discoveryTimeoutMs: { min: 0, max: 3_600_000, integer: true, unit: 'milliseconds' },
  namespaceWatchFrom: { min: 0, max: 1_000_000, integer: true, unit: 'followed services (0: never)' },
};

/** The one place options are checked; every other file reads the resolved result. */
export function validateOptions(options: EtcdDiscoveryModuleOptions | undefined): ResolvedDiscoveryOptions {
  const input = options ?? {};
  if (typeof input !== 'object') fail('options', input, 'pass an object, e.g. EtcdDiscoveryModule.forRoot({ etcd: { hosts: [...] } })');
  const etcd = input.etcd ?? {};
  const server = input.server ?? {};
  const hosts = validateHosts(etcd.hosts ?? DEFAULT_HOSTS);
  const tls = etcd.tls ? validateTls(etcd.tls) : undefined;
  const plainHost = hosts.find((host) => host.startsWith('http://'));
  if (tls && plainHost !== undefined) {
    fail('etcd.tls', '<redacted>', `TLS material is given but ${plainHost} is plain http: write every host as https://host:port`);
  }
  return {
    etcd: {
      hosts,
      tls,
      auth: etcd.auth ? validateAuth(etcd.auth) : undefined,
      requestTimeoutMs: number('etcd.requestTimeoutMs', etcd.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
      keepaliveIntervalMs: validateKeepalive(etcd.keepaliveIntervalMs),
    },
    namespace: validateNamespace(input.namespace ?? DEFAULT_NAMESPACE),
    allowedAddresses: validateAllowedAddresses(input.allowedAddresses),
    registrations: validateRegistrations(input.registration),
    server: {
      ttlSeconds: number('server.ttlSeconds', server.ttlSeconds, DEFAULT_TTL_SECONDS),
      drainDelayMs: number('server.drainDelayMs', server.drainDelayMs, DEFAULT_DRAIN_DELAY_MS),
      shutdownTimeoutMs: number('server.shutdownTimeoutMs', server.shutdownTimeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS),
      healthService: boolean('server.healthService', server.healthService, DEFAULT_HEALTH_SERVICE),
    },
    discoveryTimeoutMs: number('discoveryTimeoutMs', input.discoveryTimeoutMs, DEFAULT_DISCOVERY_TIMEOUT_MS),
    namespaceWatchFrom: number('namespaceWatchFrom', input.namespaceWatchFrom, DEFAULT_NAMESPACE_WATCH_FROM),
  };
}

export function validateServiceName(field: string, name: unknown): string {
  if (typeof name !== 'string' || !SERVICE_NAME_PATTERN.test(name)) {
    fail(field, name, 'use 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit (no "/")');
  }
  return name;
}

function number(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const rule = NUMBER_RULES[field];
  const ok = typeof value === 'number' && Number.isFinite(value) && (!rule.integer || Number.isInteger(value));
  if (!ok || value < rule.min || value > rule.max) {
    fail(field, value, `use a whole number of ${rule.unit} from ${rule.min} to ${rule.max}`);
  }
  return value;
}

function validateKeepalive(value: unknown): number {
  const interval = number('etcd.keepaliveIntervalMs', value, DEFAULT_KEEPALIVE_INTERVAL_MS);
  if (interval > 0 && interval < MIN_KEEPALIVE_INTERVAL_MS) {
    fail('etcd.keepaliveIntervalMs', value, `use 0 (no pings) or at least ${MIN_KEEPALIVE_INTERVAL_MS}: etcd closes connections that ping more often`);
  }
  return interval;
}

function boolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(field, value, 'use true or false');
  return value;
}

function validateHosts(hosts: unknown): string[] {
  const list = typeof hosts === 'string' ? [hosts] : hosts;
  if (!Array.isArray(list) || list.length === 0) {
    fail('etcd.hosts', hosts, 'give at least one endpoint such as "http://127.0.0.1:2379"');
  }
  return list.map((host, index) => {
    const field = `etcd.hosts[${index}]`;
    // user:password@ in a URL would be a password in this message and in every log of it.
    if (typeof host === 'string' && host.includes('@')) {
      fail(field, host.replace(/\/\/.*@/, '//<redacted>@'), 'leave credentials out of the URL: give them as etcd.auth { username, password }');
    }
    let url: URL | undefined;
    try {
      url = typeof host === 'string' ? new URL(host) : undefined;
    } catch {
      // Not kept as the cause: URL's error carries the whole input.
      fail(field, host, 'write an endpoint as "http://host:port" or "https://host:port"');
    }
    // URL drops a default port (":443" on https), so the explicit port is read from the text.
    const port = typeof host === 'string' ? /:(\d{1,5})\/?$/.exec(host)?.[1] : undefined;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !port || url.pathname !== '/') {
      fail(field, host, 'write an endpoint as "http://host:port" or "https://host:port" (scheme and port required, no path)');
    }
    return `${url.protocol}//${url.hostname}:${port}`;
  });
}

/** Key material never reaches an error message: only what kind of value it was. */
function validateTls(tls: unknown): ResolvedDiscoveryOptions['etcd']['tls'] {
  if (typeof tls !== 'object' || tls === null) fail('etcd.tls', redacted(tls), 'pass { rootCertificate, privateKey?, certChain? } as Buffers');
  const value = tls as Record<string, unknown>;
  if (!Buffer.isBuffer(value.rootCertificate)) {
    fail('etcd.tls.rootCertificate', redacted(value.rootCertificate), 'pass the CA certificate as a Buffer (fs.readFileSync("ca.pem"))');
  }
  for (const key of ['privateKey', 'certChain'] as const) {
    if (value[key] !== undefined && !Buffer.isBuffer(value[key])) {
      fail(`etcd.tls.${key}`, redacted(value[key]), 'pass PEM contents as a Buffer (fs.readFileSync(...)), or leave it out');
    }
  }
  if ((value.privateKey === undefined) !== (value.certChain === undefined)) {
    fail('etcd.tls', '<redacted>', 'client certificates need both privateKey and certChain');
  }
  return { rootCertificate: value.rootCertificate as Buffer, privateKey: value.privateKey as Buffer | undefined, certChain: value.certChain as Buffer | undefined };
}

function redacted(value: unknown): string {
  if (Buffer.isBuffer(value)) return `<Buffer of ${value.length} bytes, redacted>`;
  if (typeof value === 'string') return `<string of ${value.length} characters, redacted>`;
  return value === null || value === undefined ? String(value) : `<${typeof value}, redacted>`;
}

function validateAuth(auth: unknown): { username: string; password: string } {
  const value = auth as Record<string, unknown>;
  if (typeof auth !== 'object' || auth === null || typeof value.username !== 'string' || value.username === '') {
    fail('etcd.auth.username', typeof value?.username === 'string' ? value.username : redacted(value?.username), 'give the etcd user name as a non-empty string');
  }
  if (typeof value.password !== 'string') {
    fail('etcd.auth.password', '<redacted>', 'give the etcd password as a string');
  }
  return { username: value.username, password: value.password };
}

function validateNamespace(namespace: unknown): string {
  const trimmed = typeof namespace === 'string' ? trimTrailingSlashes(namespace) : namespace;
  if (typeof trimmed !== 'string' || !NAMESPACE_PATTERN.test(trimmed)) {
    fail('namespace', namespace, 'use path segments of letters, digits, ".", "_" or "-", such as "/services" or "/prod/services"');
  }
  return trimmed;
}

/** A loop, not /\/+$/: that regex is quadratic on a long run of slashes not at the end. */
function trimTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text[end - 1] === '/') end -= 1;
  return text.slice(0, end);
}

function validateRegistrations(registration: unknown): ResolvedRegistration[] {
  if (registration === undefined) return [];
  const list = Array.isArray(registration) ? registration : [registration];
  const seen = new Set<string>();
  return list.map((item: RegistrationOptions, index) => {
    const at = Array.isArray(registration) ? `registration[${index}]` : 'registration';
    if (typeof item !== 'object' || item === null) fail(at, item, 'pass { serviceName: "my-service" }');
    const serviceName = validateServiceName(`${at}.serviceName`, item.serviceName);
    if (seen.has(serviceName)) fail(`${at}.serviceName`, serviceName, 'register each service name once per process');
    seen.add(serviceName);
    if (item.host !== undefined && (typeof item.host !== 'string' || !isValidHost(item.host))) {
      fail(`${at}.host`, item.host, 'use an IP address or a DNS name that clients can reach, without a port');
    }
    if (item.port !== undefined && !isValidPort(item.port)) {
      fail(`${at}.port`, item.port, 'use a port from 1 to 65535, or leave it out to advertise the bound port');
    }
    return { serviceName, host: item.host, port: item.port, metadata: validateMetadata(`${at}.metadata`, item.metadata) };
  });
}

/** A registration's metadata, from the options or from `EtcdRegistration.update()`: the rules records are read with. */
export function validateMetadata(field: string, metadata: unknown): Record<string, unknown> {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    fail(field, metadata, 'pass a plain object such as { version: "1.0.0", zone: "eu-1" }');
  }
  const record = metadata as Record<string, unknown>;
  for (const rule of WELL_KNOWN_RULES) {
    const value = record[rule.field];
    if (value !== undefined && !rule.accepts(value)) fail(`${field}.${rule.field}`, value, `use ${rule.expected}`);
  }
  let json: string;
  try {
    json = JSON.stringify(record);
  } catch (cause) {
    fail(field, '{...}', 'metadata must be JSON-serializable (no cycles, no BigInt)', cause);
  }
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES) {
    fail(field, `${Buffer.byteLength(json)} bytes`, `keep metadata under ${MAX_METADATA_BYTES} bytes of JSON`);
  }
  // Clients read records with the same bounds: refuse here what every client would skip.
  const problem = metadataShapeProblem({ ...(JSON.parse(json) as object), ...ADDED_METADATA });
  if (problem) fail(field, '{...}', `clients would skip this record: "Metadata" ${problem} (at most 8 levels, 62 keys per object)`);
  return JSON.parse(json) as Record<string, unknown>;
}

function validateAllowedAddresses(allow: unknown): readonly string[] | undefined {
  if (allow === undefined) return undefined;
  if (!Array.isArray(allow) || allow.length === 0) {
    fail('allowedAddresses', allow, 'pass a non-empty array of CIDRs or host names, e.g. ["10.0.0.0/8", "*.svc.cluster.local"], or leave it out');
  }
  allow.forEach((entry, index) => {
    if (!parseAllowEntry(entry)) fail(`allowedAddresses[${index}]`, entry, 'use a CIDR ("10.0.0.0/8", "fd00::/8"), an IP, a host name or "*.domain"');
  });
  return [...(allow as string[])];
}

/** Loopback hosts of an etcd URL: credentials sent to them in clear text never leave the machine. */
export function isLoopbackEtcdHost(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

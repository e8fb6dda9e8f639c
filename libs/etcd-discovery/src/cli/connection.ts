import { readFileSync } from 'node:fs';
import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../common/backoff.js';
import { InvalidDiscoveryOptionsError } from '../options/invalid-options.error.js';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import { isLoopbackEtcdHost, validateOptions } from '../options/validate-options.js';
import { AddressPolicy } from '../registry/address-policy.js';
import { createEtcdClient } from '../registry/etcd-client.factory.js';
import { UsageError } from './cli-errors.js';
import type { FlagValues } from './command-line.js';

/** etcdctl's environment variables, read when the matching flag is absent. */
const ENV = { endpoints: 'ETCDCTL_ENDPOINTS', cacert: 'ETCDCTL_CACERT', cert: 'ETCDCTL_CERT', key: 'ETCDCTL_KEY', user: 'ETCDCTL_USER' } as const;
type EnvFlag = keyof typeof ENV;
/** Option errors start with the package name, which the CLI prints already. */
const LIBRARY_PREFIX = /^nestjs-etcd-discovery: /;

export interface Connection {
  readonly options: ResolvedDiscoveryOptions;
  readonly policy: AddressPolicy;
  /** A warning for stderr, if the connection deserves one. */
  readonly warning?: string;
  connect(): Etcd3;
}

/**
 * Flags and environment turned into the module's own options and validated by the module's own rules,
 * so a bad endpoint, namespace or allow list gets the message a misconfigured app would get.
 */
export function resolveConnection(flags: FlagValues, env: NodeJS.ProcessEnv): Connection {
  const sources = new Map<string, string>();
  const pick = (flag: EnvFlag): string | undefined => {
    if (flags[flag] !== undefined) {
      sources.set(flag, `--${flag}`);
      return flags[flag];
    }
    const value = env[ENV[flag]];
    if (value === undefined || value === '') return undefined;
    sources.set(flag, ENV[flag]);
    return value;
  };
  const tls = readTls(pick('cacert'), pick('cert'), pick('key'), sources);
  const endpoints = pick('endpoints');
  const user = pick('user');
  const allowed = flags['allowed-addresses'];
  let options: ResolvedDiscoveryOptions;
  try {
    options = validateOptions({
      etcd: {
        hosts: endpoints === undefined ? undefined : splitList(endpoints).map((endpoint) => withScheme(endpoint, tls !== undefined)),
        tls,
        auth: user === undefined ? undefined : parseUser(user, sources.get('user')!),
        requestTimeoutMs: flags['request-timeout'] === undefined ? undefined : Number(flags['request-timeout']),
      },
      namespace: flags.namespace,
      allowedAddresses: allowed === undefined ? undefined : splitList(allowed),
    });
  } catch (error) {
    if (error instanceof InvalidDiscoveryOptionsError) throw new UsageError(`${error.message.replace(LIBRARY_PREFIX, '')} (given by ${sourceOf(error.field, sources)})`);
    throw error;
  }
  const { hosts, auth } = options.etcd;
  const plain = auth ? hosts.find((host) => host.startsWith('http://') && !isLoopbackEtcdHost(host)) : undefined;
  return {
    options,
    policy: new AddressPolicy(options.allowedAddresses),
    warning: plain && `warning: ${sources.get('user')} sends the etcd password in clear text to ${plain}`,
    connect: () => createEtcdClient(options.etcd),
  };
}

function readTls(cacert: string | undefined, cert: string | undefined, key: string | undefined, sources: Map<string, string>) {
  if (cacert === undefined && cert === undefined && key === undefined) return undefined;
  if (cacert === undefined) throw new UsageError('--cert and --key need --cacert (the CA that signed etcd\'s certificate)');
  const read = (flag: EnvFlag, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new UsageError(`${sources.get(flag)}: cannot read ${path}: ${errorMessage(error)}`);
    }
  };
  return { rootCertificate: read('cacert', cacert)!, certChain: read('cert', cert), privateKey: read('key', key) };
}

/** etcdctl's form `name:password`; the password may itself contain colons. */
function parseUser(user: string, source: string): { username: string; password: string } {
  const colon = user.indexOf(':');
  if (colon < 0) throw new UsageError(`${source}: give the user as name:password`);
  return { username: user.slice(0, colon), password: user.slice(colon + 1) };
}

/** etcdctl takes `host:port` and picks the scheme from the TLS flags; the module wants it written. */
function withScheme(endpoint: string, tls: boolean): string {
  return endpoint.includes('://') ? endpoint : `${tls ? 'https' : 'http'}://${endpoint}`;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function sourceOf(field: string, sources: ReadonlyMap<string, string>): string {
  if (field.startsWith('etcd.hosts')) return sources.get('endpoints') ?? '--endpoints';
  if (field.startsWith('etcd.tls')) return [sources.get('cacert'), sources.get('cert'), sources.get('key')].filter(Boolean).join(', ');
  if (field.startsWith('etcd.auth')) return sources.get('user') ?? '--user';
  if (field === 'etcd.requestTimeoutMs') return '--request-timeout';
  if (field.startsWith('allowedAddresses')) return '--allowed-addresses';
  return `--${field}`;
}

import type { EtcdTlsOptions } from './etcd-discovery-options.interface.js';

/** Options after validation and defaults: what the rest of the library reads. */
export interface ResolvedDiscoveryOptions {
  readonly etcd: {
    readonly hosts: readonly string[];
    readonly tls?: EtcdTlsOptions;
    readonly auth?: { readonly username: string; readonly password: string };
    readonly requestTimeoutMs: number;
    /** 0: no pings. */
    readonly keepaliveIntervalMs: number;
  };
  readonly namespace: string;
  /** Undefined: the default address policy. */
  readonly allowedAddresses?: readonly string[];
  readonly registrations: readonly ResolvedRegistration[];
  readonly server: {
    readonly ttlSeconds: number;
    readonly drainDelayMs: number;
    readonly shutdownTimeoutMs: number;
    readonly healthService: boolean;
  };
  readonly discoveryTimeoutMs: number;
  /** 0: a watch per service, always. */
  readonly namespaceWatchFrom: number;
}

export interface ResolvedRegistration {
  readonly serviceName: string;
  readonly host?: string;
  readonly port?: number;
  readonly metadata: Readonly<Record<string, unknown>>;
}

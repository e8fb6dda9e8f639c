import type { ModuleMetadata, Type } from '@nestjs/common';

/** TLS material for the etcd connection (PEM buffers). */
export interface EtcdTlsOptions {
  rootCertificate: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

export interface EtcdConnectionOptions {
  /**
   * etcd endpoints, each with its scheme.
   * @default ['http://127.0.0.1:2379']
   */
  hosts?: string | string[];
  /** TLS for the etcd connection; `https://` hosts need it. */
  tls?: EtcdTlsOptions;
  /** etcd user credentials (simple-token or JWT auth). */
  auth?: { username: string; password: string };
  /**
   * Deadline for a single etcd request, in milliseconds.
   * @default 5000
   */
  requestTimeoutMs?: number;
  /**
   * HTTP/2 ping interval on the etcd connections, so a silently dead connection is noticed; 0 turns pings off.
   * etcd accepts one ping per 5 s; etcd 3.4's `grpc-proxy` only one per 5 minutes and closes connections that
   * ping more often: behind it use 300000 or more (or 0).
   * @default 10000
   */
  keepaliveIntervalMs?: number;
}

/** One service this process serves and announces in etcd. */
export interface RegistrationOptions {
  /** Service name clients discover it by, e.g. `greeter`. Letters, digits, `.`, `_`, `-`. */
  serviceName: string;
  /**
   * Host written to the registry. Set it when the address the server sees is not the one
   * clients can reach (containers, NAT).
   * @default derived from the server's bind address (loopback stays loopback, a wildcard
   * bind advertises the first non-internal IPv4 address)
   */
  host?: string;
  /**
   * Port written to the registry.
   * @default the port the gRPC server really bound (so port 0 works)
   */
  port?: number;
  /** Free-form metadata merged into the record's `Metadata` (e.g. `{ version: '1.2.0', zone: 'eu-1', weight: 2 }`). */
  metadata?: Record<string, unknown>;
}

export interface ServerLifecycleOptions {
  /**
   * Lease TTL in seconds; a crashed process disappears from the registry after at most this long.
   * @default 10
   */
  ttlSeconds?: number;
  /**
   * Time between removing the registration and closing the server, so every client sees the
   * removal before connections close.
   * @default 1000
   */
  drainDelayMs?: number;
  /**
   * Time graceful shutdown waits for in-flight calls before cancelling them.
   * @default 10000
   */
  shutdownTimeoutMs?: number;
  /**
   * Serve the standard `grpc.health.v1.Health` service on the gRPC port: `SERVING` for `""` and
   * each served service while registered in etcd, `NOT_SERVING` before that, while the lease is
   * lost or paused, and from the instant shutdown starts. Point a readiness probe at it, not a
   * liveness probe. Skipped (one warning) if the app serves its own `grpc.health.v1.Health`.
   * @default true
   */
  healthService?: boolean;
}

export interface EtcdDiscoveryModuleOptions {
  /** How to reach etcd. */
  etcd?: EtcdConnectionOptions;
  /**
   * Key prefix shared by every service: keys are `<namespace>/<service>/<instanceId>`.
   * @default '/services'
   */
  namespace?: string;
  /**
   * Addresses clients may connect to, as CIDRs (`'10.0.0.0/8'`, `'fd00::/8'`), IPs, host names or
   * `'*.domain'` suffixes; a record pointing anywhere else is skipped and logged once. Whoever can
   * write the namespace chooses where your calls go: narrow this to your network in production.
   * @default every address except unspecified (0.0.0.0, ::), multicast, broadcast and link-local
   * (169.254.0.0/16, fe80::/10, where cloud metadata endpoints live)
   */
  allowedAddresses?: string[];
  /** What this process serves. Omit in an app that only calls services. */
  registration?: RegistrationOptions | RegistrationOptions[];
  /** Lease and shutdown timing for a serving app. */
  server?: ServerLifecycleOptions;
  /**
   * How long `ClientFactory` waits for a first live instance before erroring.
   * @default 10000
   */
  discoveryTimeoutMs?: number;
  /**
   * From how many followed services on this process watches the whole namespace once instead of each service
   * (back to a watch per service below half of it). A namespace watch saves etcd a watcher per service but
   * delivers every write under the namespace, followed or not: lower it in a namespace of few services, raise it
   * or set `0` (never) in a large shared namespace where this process follows a handful.
   * @default 32
   */
  namespaceWatchFrom?: number;
  /**
   * Register the module globally.
   * @default false
   */
  isGlobal?: boolean;
}

export interface EtcdDiscoveryOptionsFactory {
  createEtcdDiscoveryOptions(): EtcdDiscoveryModuleOptions | Promise<EtcdDiscoveryModuleOptions>;
}

export interface EtcdDiscoveryModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  isGlobal?: boolean;
  useFactory?: (...args: any[]) => EtcdDiscoveryModuleOptions | Promise<EtcdDiscoveryModuleOptions>;
  inject?: any[];
  useClass?: Type<EtcdDiscoveryOptionsFactory>;
  useExisting?: Type<EtcdDiscoveryOptionsFactory>;
}

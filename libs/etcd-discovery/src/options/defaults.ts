/** Defaults of the module's options; `@default` tags in etcd-discovery-options.interface.ts name the same values. */
export const DEFAULT_HOSTS = ['http://127.0.0.1:2379'];
export const DEFAULT_NAMESPACE = '/services';
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 10_000;
/** etcd's server enforces at least 5 s between pings (its --grpc-keepalive-min-time). */
export const MIN_KEEPALIVE_INTERVAL_MS = 5_000;
export const DEFAULT_TTL_SECONDS = 10;
export const DEFAULT_DRAIN_DELAY_MS = 1_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_HEALTH_SERVICE = true;
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 10_000;
/**
 * Followed services from which a process watches the whole namespace once instead of each service: a watch
 * per service costs a watcher in etcd and ~8 KB of client heap (half of it etcd3's watcher), a namespace watch
 * costs receiving the events of services nobody here follows (their keys are dropped by name, never stored).
 * Few services stay on watches of their own, so a client of one service in a huge namespace never hears of the
 * rest.
 */
export const DEFAULT_NAMESPACE_WATCH_FROM = 32;
/** etcd's lease TTL floor is about 1.5 x election timeout; below 2 s leases expire spuriously. */
export const MIN_TTL_SECONDS = 2;

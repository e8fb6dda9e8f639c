import { ExponentialBackoff, handleWhen, noop, retry, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import { attachEtcdActivity, EtcdActivity } from './etcd-activity.js';
import { isResponseTooLarge } from './etcd-failure.js';

/**
 * etcd3's default fault handling makes recovery slow: a per-host circuit breaker locks a restarted
 * single node out for 5 s and the watch backoff grows to 30 s (see docs/field-notes.md). Recovery loops of
 * our own sit above this client, so it only needs short, bounded retries. One policy per client: its
 * events feed that client's `EtcdActivity` (every unary call passes through it; streams do not).
 */
function faultHandling(activity: EtcdActivity): IOptions['faultHandling'] {
  // etcd3 counts RESOURCE_EXHAUSTED as recoverable; a response over the receive limit is not: the
  // same request would only download it again. The mirror asks for a smaller page instead.
  const global = retry(handleWhen((error) => isRecoverableError(error) && !isResponseTooLarge(error)), {
    maxAttempts: 3,
    backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }),
  });
  global.onSuccess(() => activity.succeeded());
  global.onFailure(({ reason }) => {
    if ('error' in reason) activity.failed(reason.error);
  });
  return {
    host: () => noop,
    global,
    // etcd3 types this as a backoff but calls it as a factory (`.next()`), which is what we pass.
    watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000 }) as unknown as IBackoff<unknown>,
  };
}

/**
 * The receive limit is set on purpose: grpc-js' 4 MiB default is under what three values at etcd's
 * 1.5 MiB request limit weigh, and anyone allowed to write under a prefix can put them there. Lists
 * page anyway (registry/paged-range.ts); 16 MiB leaves each page room for ten such values.
 */
const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;
const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
  'grpc.enable_http_proxy': 0,
};

/**
 * HTTP/2 pings notice a silently dead etcd connection. etcd closes connections pinging under every 5 s,
 * etcd 3.4's grpc-proxy under every 5 minutes (docs/field-notes.md), hence the option.
 */
function keepaliveOptions(intervalMs: number): Record<string, number> {
  if (intervalMs === 0) return {};
  return { 'grpc.keepalive_time_ms': intervalMs, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1 };
}

export function createEtcdClient(options: ResolvedDiscoveryOptions['etcd']): Etcd3 {
  const { requestTimeoutMs } = options;
  const activity = new EtcdActivity();
  const client = new Etcd3({
    hosts: [...options.hosts],
    credentials: options.tls,
    auth: options.auth ? { ...options.auth } : undefined,
    grpcOptions: { ...CHANNEL_OPTIONS, ...keepaliveOptions(options.keepaliveIntervalMs) },
    faultHandling: faultHandling(activity),
    // Unary calls get a deadline so a blackholed etcd cannot stall a recovery loop; streams must not.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
  });
  attachEtcdActivity(client, activity);
  return client;
}
